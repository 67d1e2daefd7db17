"""Content identity: before a file is unlinked, show by piece hashes that it holds
the torrent's data, not merely something of the same name and size.

A file replaced by another of the same size (data moved and the directory
re-pointed, a re-encode, a user's file dropped in place) passes every check on
names, sizes and types; only its bytes tell. `pieces.choose_sample` picks, for
each file to delete, a piece that rtorrent has; here each is read and hashed.

The cost is bounded: a torrent whose sample would read more than the budget is
refused, with the budget it needs, rather than deleted on a smaller sample.
Files are opened by the caller's `Opener`, which must hand out a descriptor for
exactly the entry that will be unlinked (the deletion plan's identity), so what
was hashed is what goes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass

from rtorrentd.deletion.pieces import Check, Layout, Segment, choose_sample, own_piece
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.protocol.metainfo import Bitfield, Metainfo

MIB = 1024 * 1024
DEFAULT_VERIFY_BUDGET = 64 * MIB
"""Bytes hashed at most per deleted torrent ([safety] verify_budget)."""

READ_CHUNK = MIB

Opener = Callable[[int], int]
"""A file's index in the metainfo -> a descriptor open for reading (the caller closes
nothing: `verify` closes it). Raises OSError or UnsafeDeletion when it cannot."""

_BY_HAND = "delete this torrent's data by hand, or remove the torrent without its data"


@dataclass(frozen=True, slots=True)
class Verified:
    """What the check cost, and what it showed."""

    pieces: int  # pieces hashed
    bytes_read: int
    files: int  # files shown to be the torrent's
    dataless: int  # files with no complete piece, unlinked as holding no data


def check_content(
    meta: Metainfo,
    targets: Collection[int],
    readable: Collection[int],
    have: Bitfield,
    *,
    budget: int,
    holds_no_data: Callable[[int], bool],
    open_file: Opener,
    name_of: Callable[[int], str],
) -> Verified:
    """Show that every file in `targets` holds the torrent's bytes, or refuse.

    `targets` and `readable` are indices into `meta.files` (readable: on disk,
    the targets included); `holds_no_data` tells a target that holds no data at
    all (sparse throughout), which may go unproven: nothing is lost with it; `name_of` names a
    file for messages. Raises `UnsafeDeletion` naming the file that differs,
    that nothing proves, or the budget a large sample would need.
    """
    sample = choose_sample(meta, targets, readable, have)
    unproven = [u for u in sample.unproven if not holds_no_data(u.file)]
    if unproven:
        first = unproven[0]
        more = f" (and {len(unproven) - 1} other file(s))" if len(unproven) > 1 else ""
        raise UnsafeDeletion(
            f"refusing to delete {name_of(first.file)!r}{more}: nothing shows that it holds "
            f"the torrent's data: {first.reason}, and it holds data; {_BY_HAND}"
        )
    if sample.size > budget:
        raise UnsafeDeletion(
            f"refusing to delete {meta.name!r}: showing that its files are the torrent's "
            f"means hashing {_mib(sample.size)} ({len(sample.checks)} pieces), more than "
            f"[safety] verify_budget ({_mib(budget)}); raise verify_budget to at least "
            f"{_mib(sample.size)}, or {_BY_HAND}"
        )
    checker = _Checker(meta, have, open_file, name_of)
    for check in sample.checks:
        if not checker.matches(check):
            raise checker.differs(check)
    layout = Layout(meta)
    proven = {f for c in sample.checks for f in layout.proves(c)} & set(targets)
    return Verified(len(sample.checks), sample.size, len(proven), len(sample.unproven))


@dataclass(frozen=True, slots=True)
class _Checker:
    meta: Metainfo
    have: Bitfield
    open_file: Opener
    name_of: Callable[[int], str]

    def matches(self, check: Check) -> bool:
        """Whether the piece's bytes hash to the metainfo's; refuses what cannot be read."""
        digest = hashlib.sha1()
        for segment in check.segments:
            try:
                _hash_range(digest.update, self.open_file(segment.file), segment)
            except OSError as exc:
                raise UnsafeDeletion(
                    f"refusing to delete: {self.name_of(segment.file)!r} cannot be read to "
                    f"check its content ({exc.strerror or exc}); check its permissions, then "
                    "retry"
                ) from exc
        return digest.digest() == self.meta.piece_hash(check.piece)

    def differs(self, check: Check) -> UnsafeDeletion:
        """The refusal for a piece that does not match: names the file that differs.

        A piece spanning several files cannot tell which of them differs; a file
        among them with a piece of its own is hashed on that piece to find out
        (at most the two at the piece's ends: the files between are smaller).
        """
        suspects = check.files
        if len(suspects) > 1:
            layout = Layout(self.meta)
            for file in suspects:
                own = own_piece(layout, file, self.have)
                if own is not None and not self.matches(own):
                    return self._differs(own)
                if own is not None:
                    suspects = tuple(f for f in suspects if f != file)
        if len(suspects) == 1:
            return self._differs(check, suspects[0])
        names = ", ".join(repr(self.name_of(f)) for f in suspects)
        return UnsafeDeletion(
            f"refusing to delete: piece {check.piece} does not match the metainfo's hash; "
            f"it holds bytes of {names}: one of these is not the torrent's (replaced or "
            f"re-encoded); check them, then {_BY_HAND}"
        )

    def _differs(self, check: Check, file: int | None = None) -> UnsafeDeletion:
        """The refusal naming `file` (by default the one file `check` lies in)."""
        file = check.files[0] if file is None else file
        others = "" if check.files == (file,) else "; the other files it spans match"
        return UnsafeDeletion(
            f"refusing to delete {self.name_of(file)!r}: its content is not the torrent's "
            f"(piece {check.piece} does not match the metainfo's hash{others}): another "
            f"file of the same name and size, replaced or re-encoded; check it, then {_BY_HAND}"
        )


def _hash_range(update: Callable[[bytes], object], fd: int, segment: Segment) -> None:
    try:
        start, end = segment.start, segment.start + segment.length
        while start < end:
            chunk = os.pread(fd, min(READ_CHUNK, end - start), start)
            if not chunk:
                raise OSError(0, "it is shorter than when planned")
            update(chunk)
            start += len(chunk)
    finally:
        os.close(fd)


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"
