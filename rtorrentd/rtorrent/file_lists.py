"""Reading a torrent's file list without holding rtorrent for long: pure helpers.

`f.multicall` lists every file of a torrent in one call, and rtorrent builds the
whole reply under its global lock: a torrent of 50,000 files, or a batch of many
torrents, would stop rtorrent serving peers for as long as a big snapshot does.
The client groups torrents by their file counts (`d.size_files`, `by_files`) and
reads a torrent with more files than one call may list in ranges of files
(`range_calls`), each file by its own target, `<hash>:f<index>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rtorrentd.errors import MalformedReply
from rtorrentd.rtorrent.dialect import Dialect, unescape_name
from rtorrentd.torrent import FileEntry

__all__ = [
    "FILES_PER_CALL",
    "MAX_CACHED_COUNTS",
    "by_files",
    "file_entries",
    "range_calls",
    "range_rows",
]

# How many files one call may list (f.multicall rows, summed over the torrents of
# one system.multicall). rtorrent builds a whole reply under its global lock, about
# 10 us a file (measured on 0.9.8 and 0.16), so 20,000 files hold it some 200 ms,
# as a snapshot of 10,000 torrents does. A torrent with more files is read in
# ranges (`<hash>:f<index>` targets, two calls a file): never one long call, but
# some ten times rtorrent's work per file (each call is parsed on its own), which
# is why the bound is not lower (issue 15.4).
FILES_PER_CALL = 20_000

# d.size_files is kept per info-hash (a torrent's files never change); so many
# entries at most, then the cache starts over.
MAX_CACHED_COUNTS = 200_000


def by_files(hashes: Sequence[str], counts: Mapping[str, int], limit: int) -> list[list[str]]:
    """Consecutive groups of `hashes` whose files (`counts`) add up to at most
    `limit`; a torrent with more files than that is a group of its own."""
    groups: list[list[str]] = []
    total = 0
    for info_hash in hashes:
        files = max(counts[info_hash], 1)
        if not groups or total + files > limit:
            groups.append([])
            total = 0
        groups[-1].append(info_hash)
        total += files
    return groups


def range_calls(info_hash: str, first: int, last: int) -> list[tuple[str, list[object]]]:
    """`f.path` and `f.size_bytes` of files `first` to `last - 1`, by their targets:
    what `f.multicall` gives for them, file by file."""
    return [
        (method, [f"{info_hash}:f{index}"])
        for index in range(first, last)
        for method in ("f.path", "f.size_bytes")
    ]


def range_rows(replies: Sequence[object]) -> list[object]:
    """The replies to `range_calls` as `f.multicall` rows: [path, size] per file."""
    return [[path, size] for path, size in zip(replies[::2], replies[1::2], strict=True)]


def _as_list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise MalformedReply(f"{what} returned {type(value).__name__}, expected a list")
    return value


def file_entries(reply: object, dialect: Dialect) -> tuple[FileEntry, ...]:
    """An `f.multicall` reply (rows of path and size) as `FileEntry`s, names in
    0.9.8's lossy form."""
    rows = _as_list(reply, "f.multicall")
    if dialect.escapes_names:
        return tuple(
            FileEntry(unescape_name(entry.path), entry.size) for entry in map(_file_entry, rows)
        )
    return tuple(map(_file_entry, rows))


def _file_entry(row: object) -> FileEntry:
    if (
        isinstance(row, list)
        and len(row) == 2
        and isinstance(row[0], str)
        and isinstance(row[1], int)
        and not isinstance(row[1], bool)
    ):
        return FileEntry(row[0], row[1])
    raise MalformedReply(f"f.multicall returned an unexpected row {row!r:.80}")
