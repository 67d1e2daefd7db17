"""Which pieces to hash so that each file about to be deleted is shown to be the
torrent's: pure arithmetic over the metainfo, no I/O.

A piece whose SHA-1 matches the metainfo proves every byte it covers. A file
larger than a piece holds pieces of its own; a smaller one shares pieces with
its neighbours, whose bytes must then be read from their files too. So each file
to prove needs one piece that holds enough of it (half a piece, or half the file:
`Layout.proves`), that rtorrent has (an incomplete torrent's other pieces hold
whatever is there), and all of whose files are on disk to be read.

Strategy: files in torrent order; for each one not yet covered, of the pieces
that qualify take the one covering most files still unproven (small files share
pieces: fewer pieces to read), then the one holding most of this file's bytes
(more of it is shown), then the one nearest its middle. Only
a file's first, last and middle-most qualifying pieces are weighed: the ones in
between cover that file alone, so they are all alike.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection
from dataclasses import dataclass

from rtorrentd.protocol.metainfo import Bitfield, Metainfo


@dataclass(frozen=True, slots=True)
class Segment:
    """The bytes of one piece that lie in one file."""

    file: int  # index into Metainfo.files
    start: int  # offset within that file
    length: int


@dataclass(frozen=True, slots=True)
class Check:
    """One piece to hash, and where its bytes are."""

    piece: int
    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        return sum(s.length for s in self.segments)

    @property
    def files(self) -> tuple[int, ...]:
        return tuple(s.file for s in self.segments)


@dataclass(frozen=True, slots=True)
class Unproven:
    """A file no piece can be hashed for, and why."""

    file: int
    reason: str


@dataclass(frozen=True, slots=True)
class Sample:
    """The pieces to hash: each file to prove is covered by one of `checks`, or
    listed in `unproven`. Files of no bytes need no proof and are in neither."""

    checks: tuple[Check, ...]
    unproven: tuple[Unproven, ...]

    @property
    def size(self) -> int:
        """Bytes that hashing every check reads."""
        return sum(c.size for c in self.checks)


class Layout:
    """Where each piece's bytes lie among the torrent's files."""

    def __init__(self, meta: Metainfo) -> None:
        self.meta = meta
        self._starts = [f.offset for f in meta.files]

    def segments(self, piece: int) -> tuple[Segment, ...]:
        """The files piece `piece` spans, in order, with the bytes it takes of each."""
        start, end = self.meta.piece_span(piece)
        files = self.meta.files
        index = max(bisect_right(self._starts, start) - 1, 0)
        found: list[Segment] = []
        while index < len(files) and files[index].offset < end:
            entry = files[index]
            low, high = max(start, entry.offset), min(end, entry.offset + entry.length)
            if high > low:
                found.append(Segment(index, low - entry.offset, high - low))
            index += 1
        return tuple(found)

    def proves(self, check: Check) -> tuple[int, ...]:
        """The files whose content `check` shows: those of which it holds at least
        half a piece, or half the file. A piece that only touches a file (its first
        bytes: a format's header, the same in any re-encode) shows nothing of it."""
        files, length = self.meta.files, self.meta.piece_length
        return tuple(
            s.file for s in check.segments if 2 * s.length >= min(files[s.file].length, length)
        )

    def pieces_of(self, file: int) -> range:
        """The pieces holding any byte of file `file` (none for an empty file)."""
        entry = self.meta.files[file]
        if not entry.length:
            return range(0)
        length = self.meta.piece_length
        return range(entry.offset // length, (entry.offset + entry.length - 1) // length + 1)


def choose_sample(
    meta: Metainfo, targets: Collection[int], readable: Collection[int], have: Bitfield
) -> Sample:
    """Pieces that together cover every file in `targets` (indices into `meta.files`).

    `readable` are the files whose bytes may be read (the targets and the other
    files on disk); `have` says which pieces rtorrent has.
    """
    layout = Layout(meta)
    still = {t for t in targets if meta.files[t].length}  # not yet covered
    checks: list[Check] = []
    unproven: list[Unproven] = []
    for target in sorted(still):
        if target not in still:
            continue
        check = _best_check(layout, target, still, readable, have)
        if isinstance(check, Unproven):
            unproven.append(check)
            still.discard(target)
            continue
        checks.append(check)
        still.difference_update(layout.proves(check))
    return Sample(tuple(checks), tuple(unproven))


def _best_check(
    layout: Layout, target: int, open_targets: set[int], readable: Collection[int], have: Bitfield
) -> Check | Unproven:
    pieces = layout.pieces_of(target)
    had = [p for p in _candidates(pieces, have) if have.has(p)]
    if not had:
        return Unproven(target, "rtorrent has none of its pieces, so none can be checked")
    usable = [Check(p, layout.segments(p)) for p in had]
    usable = [c for c in usable if target in layout.proves(c)]
    if not usable:
        return Unproven(
            target, "no piece rtorrent has holds enough of it (half a piece, or half the file)"
        )
    usable = [c for c in usable if all(f in readable for f in c.files)]
    if not usable:
        return Unproven(
            target,
            "each of its pieces that rtorrent has also holds bytes of a file that is not "
            "on disk, so none can be checked",
        )
    middle = (pieces.start + pieces.stop - 1) / 2
    return min(
        usable,
        key=lambda c: (
            -len(open_targets.intersection(layout.proves(c))),
            -sum(s.length for s in c.segments if s.file == target),
            abs(c.piece - middle),
            c.piece,
        ),
    )


def _candidates(pieces: range, have: Bitfield) -> tuple[int, ...]:
    """The first and last piece, and the had piece nearest the middle of those between."""
    ends = (pieces.start, pieces.stop - 1)
    inner = range(pieces.start + 1, pieces.stop - 1)
    if not inner:
        return tuple(dict.fromkeys(ends))
    middle = inner.start + len(inner) // 2
    for distance in range(len(inner)):
        for piece in (middle - distance, middle + distance):
            if piece in inner and have.has(piece):
                return (*ends, piece)
    return ends


def own_piece(layout: Layout, file: int, have: Bitfield) -> Check | None:
    """A piece rtorrent has that lies wholly in file `file`, nearest its middle;
    None when the file holds none (it is smaller than about two pieces)."""
    pieces = layout.pieces_of(file)
    inner = [p for p in _candidates(pieces, have) if have.has(p)]
    own = [Check(p, layout.segments(p)) for p in inner]
    own = [c for c in own if c.files == (file,)]
    middle = (pieces.start + pieces.stop - 1) / 2
    return min(own, key=lambda c: (abs(c.piece - middle), c.piece), default=None)
