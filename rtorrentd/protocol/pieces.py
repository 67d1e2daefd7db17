"""A reply body kept as the pieces it was read in, and read once, from the front.

Why: a snapshot of 100,000 torrents is some 60 MB of XML-RPC. Held as one
`bytes` while it is decoded, it stays whole until the last row is done, beside
the 40 MB of Torrents made from it: that sum was the daemon's peak memory. Held
as the pieces the socket gave, each piece is dropped as soon as the decoder has
read past it, so the reply and what is made of it are never both whole.

`Pieces` answers the few questions a decoder asks before it starts (how the body
begins and ends, its first bytes) without taking anything; `Window` is what a
chunk decoder then reads through: one contiguous `bytes` (`buf`) from `pos`,
topped up from the pieces as it goes. Once a `Window` has taken a piece, the body
can no longer be joined whole (`Pieces.taken`): a decoder that then finds what it
cannot read says so, and the caller asks rtorrent again.

Dropping a piece must give its memory back to the system, or the peak stays
where it was: glibc keeps freed blocks of a few hundred kilobytes in its heap
(its mmap threshold rises after the first large free), where the many small
objects decoded next never land. So a `Spool` writes what the socket gives into
anonymous memory maps of its own (`SPOOL_BYTES` each), and each map is unmapped
as soon as the decoder is past it.
"""

from __future__ import annotations

import mmap
from collections import deque
from collections.abc import Iterable

__all__ = ["SPOOL_BYTES", "Pieces", "Spool", "Window"]

SPOOL_BYTES = 1024 * 1024
"""The size of one of a `Spool`'s maps: a 100,000-torrent reply is some 60 of them."""

Part = bytes | memoryview
"""A piece: bytes, or a view of the part of a `Spool` map that was written."""


class Pieces:
    """A body as a queue of byte strings, in order; empty pieces are left out.
    Mutable on purpose: `take` drops what it hands over."""

    __slots__ = ("_parts", "held", "size")

    def __init__(self, parts: Iterable[Part]) -> None:
        self._parts = deque(part for part in parts if part)
        self.size = sum(map(len, self._parts))  # the whole body's length
        self.held = self.size  # what is not handed over yet

    def __bool__(self) -> bool:
        return bool(self._parts)

    @property
    def taken(self) -> bool:
        """Whether a piece was handed over (and dropped here)."""
        return self.held < self.size

    def peek(self, count: int) -> bytes:
        """The first `count` bytes (fewer if the body is shorter), taking nothing."""
        first = self._parts[0] if self._parts else b""
        if len(first) >= count:
            return bytes(first[:count])
        wanted: list[Part] = []
        have = 0
        for part in self._parts:
            wanted.append(part)
            have += len(part)
            if have >= count:
                break
        return b"".join(wanted)[:count]

    def startswith(self, prefix: bytes) -> bool:
        """Whether the body starts with `prefix`."""
        return self.peek(len(prefix)) == prefix

    def endswith(self, suffix: bytes) -> bool:
        """Whether the body ends with `suffix`."""
        wanted: list[Part] = []
        have = 0
        for part in reversed(self._parts):
            wanted.append(part)
            have += len(part)
            if have >= len(suffix):
                break
        return b"".join(reversed(wanted)).endswith(suffix)

    def join(self) -> bytes:
        """The whole body as one `bytes` (the piece itself when there is one)."""
        if self.taken:
            raise ValueError("part of the body was read and dropped already")
        if len(self._parts) == 1 and isinstance(self._parts[0], bytes):
            return self._parts[0]
        return b"".join(self._parts)

    def take(self, count: int) -> bytes:
        """At least `count` bytes from the front, in whole pieces (all that is left
        if less), dropped from here: a single piece is handed over as it is."""
        if not self._parts:
            return b""
        first = self._parts.popleft()
        if len(first) >= count or not self._parts:
            self.held -= len(first)
            return first if isinstance(first, bytes) else bytes(first)
        taken = [first]
        have = len(first)
        while self._parts and have < count:
            taken.append(self._parts.popleft())
            have += len(taken[-1])
        self.held -= have
        return b"".join(taken)


class Window:
    """What a chunk decoder reads of a `Pieces`: `buf[pos:]` is the body from where
    decoding stands; `final` once `buf` holds the rest of the body, up to its end.
    The decoder starts past a `head` of fixed bytes and stops before a `tail`."""

    __slots__ = ("_head", "_pieces", "_tail", "buf", "final", "pos")

    def __init__(self, pieces: Pieces, head: int = 0, tail: int = 0) -> None:
        self._pieces = pieces
        self._head = head  # skipped at the first `span`: nothing is taken before
        self._tail = tail
        self.buf = b""
        self.pos = 0
        self.final = not pieces

    def span(self, count: int) -> tuple[bytes, int, int]:
        """`buf` topped up to `count` bytes from `pos` (`fill`), `pos`, and where
        what may be decoded in it ends: its end, or the tail's start once `final`."""
        if self._head:
            self.fill(self._head)
            self.pos, self._head = self._head, 0
        self.fill(count)
        end = len(self.buf) - self._tail if self.final else len(self.buf)
        return self.buf, self.pos, end

    def fill(self, count: int) -> bool:
        """Make `buf[pos:]` at least `count` bytes long, or all that is left; what
        lies before `pos` is let go. Whether anything was added."""
        left = len(self.buf) - self.pos
        if self.final or left >= count:
            return False
        more = self._pieces.take(count - left)
        self.buf = self.buf[self.pos :] + more if left else more
        self.pos = 0
        self.final = not self._pieces
        return True

    def grow(self, count: int) -> None:
        """At least `count` bytes more in `buf` (the decoder found no place to cut
        in what it holds), unless it is `final` already."""
        self.fill(len(self.buf) - self.pos + count)


class Spool:
    """Where a transport writes a reply body as it comes: anonymous memory maps of
    `SPOOL_BYTES`, filled in turn (a larger write gets a map of its own size)."""

    __slots__ = ("_map", "_parts", "_used")

    def __init__(self) -> None:
        self._parts: list[Part] = []
        self._map: mmap.mmap | None = None
        self._used = 0

    def write(self, data: bytes) -> None:
        """Append `data` to the body."""
        if self._map is None or self._used + len(data) > len(self._map):
            self._seal()
            self._map = mmap.mmap(-1, max(SPOOL_BYTES, len(data)))
        self._map[self._used : self._used + len(data)] = data
        self._used += len(data)

    def pieces(self) -> Pieces:
        """The body written, as `Pieces` (the spool is empty after)."""
        self._seal()
        parts, self._parts = self._parts, []
        return Pieces(parts)

    def _seal(self) -> None:
        if self._map is not None and self._used:
            self._parts.append(memoryview(self._map)[: self._used])
        self._map, self._used = None, 0
