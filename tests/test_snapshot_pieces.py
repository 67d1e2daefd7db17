"""A snapshot read in pieces (`protocol.pieces`), against a real rtorrent.

The client decodes a snapshot's reply from the pieces the socket gave, dropping
each once read past. When a chunk past that point is one the fast path cannot
read, the reply is no longer whole: the client must ask again for it whole (and
then decode it as before), and keep reading whole replies on that connection
rather than pay for two snapshots each poll. A real rtorrent answers; a real
socket proxy in front of it alters the last integer of each XML snapshot reply
(JSON-RPC is turned off in 0.16's rtorrent.rc, so that the snapshot is XML).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream
from harness import RtorrentProcess, TorrentFactory, random_bytes
from structlog.testing import capture_logs

from rtorrentd.errors import MalformedReply
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.torrent import Torrent

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

FIELDS = ("size", "path", "complete", "label")
LAST_I8 = re.compile(rb"<i8>(-?[0-9]+)</i8>(?!.*<i8>)", re.DOTALL)


def as_i4(reply: bytes) -> bytes:
    """The last `<i8>` of the reply written `<i4>`: the general decoder reads the
    same int; the fast path, which took the first row's shape, cannot."""
    found = LAST_I8.search(reply)
    assert found is not None
    return reply[: found.start()] + b"<i4>%s</i4>" % found[1] + reply[found.end() :]


def not_an_int(reply: bytes) -> bytes:
    """The last `<i8>`'s digits replaced by as many letters: no decoder reads it."""
    found = LAST_I8.search(reply)
    assert found is not None
    return reply[: found.start(1)] + b"z" * len(found[1]) + reply[found.end(1) :]


class Altering:
    """A proxy that passes each SCGI request on to rtorrent and its reply back,
    `alter`ing the replies to XML-RPC snapshot requests, which it counts."""

    def __init__(self, upstream: Path, alter: Callable[[bytes], bytes]) -> None:
        self.upstream = upstream
        self.alter = alter
        self.snapshots = 0

    async def __call__(self, client: ByteStream) -> None:
        async with client:
            received = BufferedByteReceiveStream(client)
            size = await received.receive_until(b":", 10)
            header = await received.receive_exactly(int(size) + 1)
            fields = header[:-1].split(b"\x00")
            length = int(fields[1])  # CONTENT_LENGTH comes first
            body = await received.receive_exactly(length)
            async with await anyio.connect_unix(self.upstream) as rtorrent:
                await rtorrent.send(size + b":" + header + body)
                reply = b""
                try:
                    while True:
                        reply += await rtorrent.receive()
                except anyio.EndOfStream:
                    pass
            is_xml = b"CONTENT_TYPE\x00application/json" not in header
            if is_xml and b"<methodName>d.multicall" in body:
                self.snapshots += 1
                reply = self.alter(reply)
            await client.send(reply)


@asynccontextmanager
async def proxy(rtorrent: RtorrentProcess, peer: Altering) -> AsyncIterator[str]:
    path = rtorrent.root / "proxy.socket"
    listener = await anyio.create_unix_listener(path)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, peer)
        yield f"scgi://{path}"
        tasks.cancel_scope.cancel()


@contextmanager
def xml_only(
    make_rtorrent: Callable[..., RtorrentProcess],
    version: str,
    root: Path,
    factory: TorrentFactory,
    count: int,
) -> Iterator[RtorrentProcess]:
    """An rtorrent of `version` with `count` torrents loaded, whose snapshot is
    XML-RPC (JSON-RPC turned off in 0.16's rtorrent.rc; 0.9.8 has none)."""
    off = () if version == "0.9.8" else ("network.rpc.use_jsonrpc.set = false",)
    with make_rtorrent(root, extra_config=off, clean_exit=False) as rtorrent:
        for i in range(count):
            data = random_bytes(3000 + i, i)
            rtorrent.load(factory(f"t{i}.bin", data, dest_dir=rtorrent.download_dir))
        yield rtorrent


def steady(torrents: tuple[Torrent, ...]) -> dict[str, tuple[object, ...]]:
    return {t.hash: (t.name, t.size, t.path, t.complete, t.label) for t in torrents}


async def test_a_reply_the_fast_path_cannot_finish_is_asked_for_again_whole(
    make_rtorrent: Callable[..., RtorrentProcess],
    rtorrent_version: str,
    tmp_path: Path,
    torrent_factory: TorrentFactory,
) -> None:
    with xml_only(make_rtorrent, rtorrent_version, tmp_path / "rt", torrent_factory, 5) as rtorrent:
        direct = RtorrentClient(open_transport(rtorrent.scgi_url, timeout=10))
        expected = steady(await direct.snapshot(FIELDS))
        assert 5 == len(expected)
        peer = Altering(rtorrent.socket_path, as_i4)
        async with proxy(rtorrent, peer) as url:
            client = RtorrentClient(open_transport(url, timeout=10))
            with capture_logs() as logs:
                first = await client.snapshot(FIELDS)
                asked_first = peer.snapshots
                second = await client.snapshot(FIELDS)
    assert (expected, expected) == (steady(first), steady(second))
    # In pieces, then whole; the next snapshot whole at once.
    assert (2, 3) == (asked_first, peer.snapshots)
    assert ["rtorrent.snapshot_whole"] == [
        e["event"] for e in logs if e["event"] == "rtorrent.snapshot_whole"
    ]


async def test_a_reply_no_decoder_reads_is_refused_after_the_whole_is_read(
    make_rtorrent: Callable[..., RtorrentProcess],
    rtorrent_version: str,
    tmp_path: Path,
    torrent_factory: TorrentFactory,
) -> None:
    with xml_only(make_rtorrent, rtorrent_version, tmp_path / "rt", torrent_factory, 3) as rtorrent:
        peer = Altering(rtorrent.socket_path, not_an_int)
        async with proxy(rtorrent, peer) as url:
            client = RtorrentClient(open_transport(url, timeout=10))
            with pytest.raises(MalformedReply, match="bad scalar value"):
                await client.snapshot(FIELDS)
    assert 2 == peer.snapshots  # the whole reply decides, and says what is wrong
