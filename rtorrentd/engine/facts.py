"""What a torrent's files say about it: `hardlinked`, `shared`, and bytes really freed.

Pure: the edge (`rtorrentd.deletion.disk.read_files`) lists each file with `f.multicall`
and `lstat`s it into a `FileFact`; everything here works from those values.

Strategy: a file is a directory entry (its absolute path as rtorrent lists it:
`d.directory` joined with `f.path`) naming an inode. Deleting a set of torrents
unlinks an entry only when every loaded torrent that lists it is in the set (the
executor keeps files another loaded torrent lists), and frees an inode's bytes
only when all of its links are unlinked, each inode counted once:
`freed_by_unlinking`, which deletion planning uses for one torrent and `Freeing`
for several deleted together.

Two torrents can list the same entry only if their data paths overlap (one equal
to or inside the other, by components), so `overlapping` says whose files must be
read as well to judge sharing, without reading every torrent's.
"""

from __future__ import annotations

import posixpath
from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

Inode = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True, slots=True)
class FileFact:
    """One listed file as found on disk (lstat, links not followed).

    `inode` is None when the file is not there; `regular` is false for a symlink
    or anything else that is not a regular file (deleting it frees no data).
    """

    path: str  # absolute and normalised
    size: int  # bytes on disk, 0 when missing
    inode: Inode | None
    links: int  # st_nlink
    regular: bool


# By info-hash: the torrents whose files were read this poll.
Files = Mapping[str, tuple[FileFact, ...]]
# By entry path: the torrents (of those read) that list it.
Listers = Mapping[str, frozenset[str]]


def file_path(directory: str, relative: str) -> str:
    """The absolute path of a listed file, normalised as the executor does."""
    return posixpath.normpath(posixpath.join(directory, relative))


def hardlinked(files: Sequence[FileFact]) -> bool:
    """Every file is a regular file with another hard link (it was archived, or
    cross-seeded by hard link): deleting the torrent frees none of its bytes."""
    return bool(files) and all(f.regular and f.links > 1 for f in files)


def listers(files: Files) -> Listers:
    """Which of the read torrents list each entry."""
    found: dict[str, set[str]] = {}
    for info_hash, entries in files.items():
        for entry in entries:
            found.setdefault(entry.path, set()).add(info_hash)
    return {path: frozenset(hashes) for path, hashes in found.items()}


def shared(files: Sequence[FileFact], by_path: Listers) -> bool:
    """Another read torrent lists one of these files (cross-seeding the same data)."""
    return any(len(by_path.get(f.path, ())) > 1 for f in files)


def overlapping(paths: Mapping[str, str], wanted: Iterable[str]) -> set[str]:
    """`wanted` and every torrent whose data path is equal to, inside, or above the
    data path of a wanted one: all that could list a file a wanted torrent lists.

    `paths` maps info-hash to data path (the `path` field). Ancestors are found by
    looking up each prefix of a path, descendants by one bisection into the
    sorted paths (all paths under `p/` sort together).
    """
    by_path: dict[str, list[str]] = {}
    for info_hash, path in paths.items():
        by_path.setdefault(_normal(path), []).append(info_hash)
    ordered = sorted(by_path)
    found = set(wanted)
    for info_hash in list(found):
        data = paths.get(info_hash)
        if data:  # an empty path overlaps nothing this can see
            found.update(_around(_normal(data), by_path, ordered))
    return found


def _normal(path: str) -> str:
    return "/" + posixpath.normpath(path).strip("/")


def _around(path: str, by_path: Mapping[str, list[str]], ordered: list[str]) -> list[str]:
    hashes: list[str] = []
    parts = path.split("/")
    for depth in range(2, len(parts) + 1):  # "/a", "/a/b", ... the path itself
        hashes += by_path.get("/".join(parts[:depth]), ())
    below = path.rstrip("/") + "/"
    for index in range(bisect_left(ordered, below), len(ordered)):
        if not ordered[index].startswith(below):
            break
        hashes += by_path[ordered[index]]
    return hashes


def freed_by_unlinking(
    unlinking: Iterable[FileFact], before: Mapping[Inode, Collection[str]] | None = None
) -> dict[str, int]:
    """Bytes that unlinking the entries `unlinking` frees, by entry path; 0 is left out.

    An inode's data is freed when its last link goes: when the entries unlinked
    here and, by inode, `before` (entries unlinked already) are all its links. Its
    size is counted once, on the last of its entries here, and not at all if
    `before` had freed it already. Only a regular file holds data; a symlink frees
    none. An entry is at least one link, whatever a filesystem reports.
    """
    done = before or {}
    names: dict[Inode, set[str]] = {}
    last: dict[Inode, FileFact] = {}
    for entry in unlinking:
        if entry.regular and entry.inode is not None:
            names.setdefault(entry.inode, set(done.get(entry.inode, ()))).add(entry.path)
            last[entry.inode] = entry
    return {
        entry.path: entry.size
        for inode, entry in last.items()
        if len(names[inode]) >= max(entry.links, 1) > len(done.get(inode, ()))
    }


class Freeing:
    """Bytes freed by deleting torrents one after another, each inode counted once.

    A small accumulator for one filesystem within one pure computation: `gain`
    says what adding a torrent would free without changing anything, `add`
    commits it. Torrents whose files were not read free nothing here.
    """

    def __init__(self, files: Files, by_path: Listers) -> None:
        self._files = files
        self._listers = by_path
        self._deleted: set[str] = set()
        self._unlinked: dict[Inode, set[str]] = {}

    def gain(self, info_hash: str) -> int:
        """Bytes that deleting `info_hash` as well would free."""
        return sum(freed_by_unlinking(self._entries(info_hash), self._unlinked).values())

    def add(self, info_hash: str) -> int:
        """Count `info_hash` as deleted; the bytes that frees."""
        entries = self._entries(info_hash)
        freed = sum(freed_by_unlinking(entries, self._unlinked).values())
        self._deleted.add(info_hash)
        for entry in entries:
            if entry.inode is not None:
                self._unlinked.setdefault(entry.inode, set()).add(entry.path)
        return freed

    def _entries(self, info_hash: str) -> list[FileFact]:
        """The regular files this deletion would unlink: no other lister remains."""
        deleted = self._deleted | {info_hash}
        return [
            f
            for f in self._files.get(info_hash, ())
            if f.regular and f.inode is not None and self._listers[f.path] <= deleted
        ]
