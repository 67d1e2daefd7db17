"""XML-RPC or JSON-RPC for the snapshot: the two wire formats, and when to use which.

rtorrent 0.15.2+ answers JSON-RPC on the same socket. For the snapshot, the one
large call of every poll, JSON is the faster path end to end (measured on 0.16.17
with 10,000 torrents, bench/poll.py): the reply is a fifth of the XML one, rtorrent
writes it no slower, and `json` reads it in a fifth of the time our XML fast path
needs. Every other call stays XML-RPC: they are small, and `system.multicall`
exists only there.

The trap (RTORRENT.md): one string in the snapshot that is not UTF-8 (a latin-1
torrent name, a tracker message) makes rtorrent replace the whole JSON reply with
error -32700. The client then takes that snapshot again over XML-RPC, which
carries such names, and stays on XML for the next `XML_AFTER_NOT_UTF8` snapshots
before it tries JSON again. Why not every poll: such a torrent is usually seeded
for weeks, and every failed JSON attempt costs rtorrent the whole reply under its
global lock, so each poll would pay twice. Why not for good: the client may run
for months on one connection, and the torrent that forced XML will be gone one day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from rtorrentd.errors import RpcFault
from rtorrentd.protocol import jsonrpc
from rtorrentd.protocol import xmlrpc as rpc
from rtorrentd.protocol.pieces import Pieces
from rtorrentd.rtorrent.dialect import Dialect

__all__ = ["JSON_RPC", "XML_AFTER_NOT_UTF8", "XML_RPC", "JsonChoice", "Wire", "is_json_disabled"]

XML_AFTER_NOT_UTF8 = 16
"""Snapshots taken over XML-RPC after a JSON reply failed on a non-UTF-8 string:
one failed JSON attempt (a whole reply's work for rtorrent) per 16 snapshots
costs a few per cent, and JSON comes back within 16 polls of that torrent leaving."""


@dataclass(frozen=True, slots=True)
class Wire:
    """One way of asking rtorrent: how a call is encoded, sent and decoded."""

    name: str
    content_type: str | None  # SCGI CONTENT_TYPE / HTTP Content-Type; None: XML-RPC
    encode: Callable[[str, Sequence[object]], bytes]
    decode: Callable[[bytes], object]
    # A snapshot's rows a chunk at a time, as columns, or None (see
    # `xmlrpc.decode_column_chunks`).
    column_chunks: Callable[[bytes | Pieces, int], Iterator[list[Sequence[object]] | None] | None]
    # Whether names come percent-escaped where they cannot be sent (XML-RPC on a
    # newer rtorrent). JSON-RPC sends every name exactly, or fails the whole reply.
    escapes_names: bool


XML_RPC = Wire(
    "XML-RPC",
    None,
    rpc.encode_call,
    rpc.decode_response,
    rpc.decode_column_chunks,
    escapes_names=True,
)
JSON_RPC = Wire(
    "JSON-RPC",
    jsonrpc.CONTENT_TYPE,
    jsonrpc.encode_call,
    jsonrpc.decode_response,
    jsonrpc.decode_column_chunks,
    escapes_names=False,
)


def is_json_disabled(fault: RpcFault) -> bool:
    """Whether `fault` is rtorrent's answer to JSON-RPC when rtorrent.rc turned it off
    (`network.rpc.use_jsonrpc.set = false`): -32601 `JSON-RPC not supported`."""
    return "json-rpc not supported" in fault.message.lower()


@dataclass(frozen=True, slots=True)
class JsonChoice:
    """Whether the next snapshot goes over JSON-RPC, for one connection."""

    off: str = ""  # why JSON-RPC does not work on this connection; "" while it may
    xml_left: int = 0  # snapshots to take over XML-RPC before JSON-RPC is tried again

    def use_json(self, dialect: Dialect) -> bool:
        """JSON-RPC for the next snapshot?"""
        return dialect.snapshot_over_json and not self.off and self.xml_left == 0

    def took_xml(self) -> JsonChoice:
        """After a snapshot taken over XML-RPC (by choice, not as a fallback)."""
        return replace(self, xml_left=max(0, self.xml_left - 1))

    def not_utf8(self) -> JsonChoice:
        """After a JSON reply that rtorrent replaced with its not-UTF-8 error."""
        return replace(self, xml_left=XML_AFTER_NOT_UTF8)

    def turned_off(self, reason: str) -> JsonChoice:
        """After JSON-RPC failed in a way that will not pass (turned off in rtorrent,
        a reply that is not JSON-RPC): XML-RPC until the connection is made anew."""
        return replace(self, off=reason)
