"""What differs between the rtorrent versions rtorrentd talks to, in one place.

The client asks `system.client_version` once per connection and gets a `Dialect`:
which method lists torrents and over which protocol, how many connections rtorrent
takes, whether a session save has landed when the call returns, and how names that
are not valid UTF-8 come back (RTORRENT.md, "rtorrent 0.16.x"). Fault codes and
texts need no version: the table in `classify_fault` holds every wording seen, and
matches all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtorrentd.errors import (
    MalformedReply,
    RpcFault,
    UnknownMethod,
    UnknownTorrent,
    UntrustedCommand,
)

__all__ = ["OLDEST", "Dialect", "classify_fault", "parse_version", "unescape_name"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How to talk to one rtorrent version (`version` from `system.client_version`)."""

    version: tuple[int, ...]

    @property
    def text(self) -> str:
        """The version as rtorrent wrote it, e.g. ``0.16.17``."""
        return ".".join(map(str, self.version))

    @property
    def multicall(self) -> str:
        """The method that lists torrents: `d.multicall2`, which 0.16.14 marks
        deprecated in favour of `d.multicall` (0.9.8 has no `d.multicall`)."""
        return "d.multicall" if self.version >= (0, 16, 14) else "d.multicall2"

    @property
    def max_connections(self) -> int:
        """Simultaneous SCGI connections rtorrent serves; more are accepted and closed."""
        return 63 if self.version >= (0, 16) else 100

    @property
    def saves_in_background(self) -> bool:
        """`d.save_full_session` only queues the save (0.16.6+): the files are
        written by another thread, as ``*.new`` then renamed, after the call returns."""
        return self.version >= (0, 16, 6)

    @property
    def snapshot_over_json(self) -> bool:
        """Whether the snapshot is asked for over JSON-RPC (0.15.2+, on the same
        socket): faster end to end than XML-RPC where measured (0.16.17, bench/poll.py);
        `wire` says when the client falls back to XML-RPC all the same."""
        return self.version >= (0, 15, 2)

    @property
    def escapes_names(self) -> bool:
        """Unsendable names (not UTF-8, characters above U+FFFF) come back with those
        bytes as ``%XX`` (newer builds); 0.9.8 sends ``?`` for each."""
        return self.version >= (0, 10)


OLDEST = Dialect((0, 9, 8))
"""The oldest rtorrent rtorrentd supports (Debian's)."""


def parse_version(text: object) -> Dialect:
    """The `Dialect` for a `system.client_version` reply ("0.9.8", "0.16.17")."""
    if not isinstance(text, str) or not (found := re.fullmatch(r"(\d+(?:\.\d+)*)\S*", text)):
        raise MalformedReply(f"system.client_version returned {text!r:.40}, expected a version")
    return Dialect(tuple(int(part) for part in found[1].split(".")))


# Bytes a newer rtorrent percent-escapes in an unsendable name: every byte >= 0x80
# and every control character (measured: `a\x01\xe9.bin` comes back `a%01%E9.bin`).
_ESCAPED = re.compile(r"%(?:[01][0-9A-F]|[89A-F][0-9A-F])")


def unescape_name(text: str) -> str:
    """A newer rtorrent's name in 0.9.8's form: each ``%XX`` of an escaped byte as ``?``.

    Why not decode the escapes: a literal ``%`` is not escaped, so ``caf%E9.bin``
    may be a file called just that or one called ``caf\\xe9.bin``; guessing could
    name someone else's file. As ``?`` the name is what the deletion path already
    knows to be lossy: it matches it against the disk or refuses. The price: a name
    with a literal ``%`` and two hex digits is refused too.
    """
    return _ESCAPED.sub("?", text) if "%" in text else text


# --- faults --------------------------------------------------------------------

# Every wording seen, lower-cased: 0.9.8 (xmlrpc-c), 0.16 (xmlrpc-c, tinyxml2). Codes
# differ between builds (-501, -503, -500 on tinyxml2), so the text decides.
_UNKNOWN_HASH = ("could not find info-hash", "info-hash not found")
_UNKNOWN_METHOD = re.compile(r"method '.*' not defined")
_UNKNOWN_METHOD_CODES = frozenset({-506, -32601})  # xmlrpc-c; JSON-RPC
# 0.16.9+ on a connection marked UNTRUSTED_CONNECTION=1 (src/rpc/command_map.cc), with
# -507 over XML-RPC but -32601 over JSON-RPC: the text decides before the code does.
_UNTRUSTED = re.compile(r'command "(.*)" is not allowed for untrusted connections', re.IGNORECASE)


def classify_fault(fault: RpcFault) -> RpcFault:
    """Map rtorrent's faults, in every version's codes and wording, to specific classes.

    | case | 0.9.8 | 0.16 xmlrpc-c | 0.16 tinyxml2 |
    | unknown hash | -501 `Could not find info-hash.` | -503 `invalid parameters:
      info-hash not found` | -500, same text |
    | unknown method | -506 `Method 'x' not defined` | the same | -500 `method 'x'
      not defined` |
    | untrusted connection | — | -507 `Command "x" is not allowed for untrusted
      connections.` (-32601 over JSON-RPC) | the same |
    """
    lowered = fault.message.lower()
    if untrusted := _UNTRUSTED.search(fault.message):
        return UntrustedCommand(fault.code, fault.message, untrusted[1])
    if any(text in lowered for text in _UNKNOWN_HASH):
        return UnknownTorrent(fault.code, fault.message)
    if fault.code in _UNKNOWN_METHOD_CODES or _UNKNOWN_METHOD.search(lowered):
        return UnknownMethod(fault.code, fault.message)
    return fault
