"""The walk of one allowed root for the orphan scan: `os.scandir`, streaming.

Entries are yielded as they are found (`engine.orphans.Seen`, from lstat), so
memory holds one open directory per level, never the tree: a million files cost
what one does. Directories are yielded only when they hold no entry at all.

Never entered: a symlink (never followed, whatever it points to), a directory on
another filesystem or a mount point (a disk or a bind mount inside the root is
someone else's), a directory a glob excludes, and the directories rtorrentd and
rtorrent own (session directories, the recycle bin, the state directory), known
by path and by identity. What they own is never yielded either (the
configuration file, files an rtorrent holds open). A directory that cannot be
listed is counted and left.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from rtorrentd.deletion.mounts import mount_points
from rtorrentd.engine.orphans import Exclude, Inode, Kind, Seen

MAX_DEPTH = 256  # open directories at once, at most (each holds a descriptor)
# An open directory: its entries, path, path relative to the root, lstat, entries seen.
_Level = tuple[Iterator[os.DirEntry[str]], str, str, os.stat_result, int]


@dataclass(slots=True)
class WalkStats:
    """What a walk met besides entries: for the report."""

    entries: int = 0
    unreadable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # mounts, other filesystems, owned


def kind_of(mode: int) -> Kind:
    """The `Kind` of an lstat mode."""
    if stat.S_ISREG(mode):
        return Kind.FILE
    if stat.S_ISLNK(mode):
        return Kind.LINK
    if stat.S_ISDIR(mode):
        return Kind.DIR
    return Kind.OTHER


def seen_from(path: str, rel: str, st: os.stat_result, *, empty: bool = False) -> Seen:
    """A `Seen` of an lstat result."""
    return Seen(
        path,
        rel,
        kind_of(st.st_mode),
        (st.st_dev, st.st_ino),
        st.st_nlink,
        st.st_size,
        st.st_mtime,
        st.st_ctime,
        empty,
    )


@dataclass(frozen=True, slots=True)
class Owned:
    """What is never walked into nor yielded: paths (normalised) and identities."""

    paths: frozenset[str]
    inodes: frozenset[Inode]

    @classmethod
    def of(cls, paths: Collection[str]) -> Owned:
        """From absolute paths (resolved here; those that are not there are kept
        by path only)."""
        real: set[str] = set()
        inodes: set[Inode] = set()
        for path in paths:
            real.add(os.path.normpath(path))
            try:
                real.add(os.path.realpath(path))
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            inodes.add((st.st_dev, st.st_ino))
        return cls(frozenset(real), frozenset(inodes))

    def owns(self, path: str, inode: Inode) -> bool:
        """Whether `path` (with `inode`) is one of these."""
        return path in self.paths or inode in self.inodes


def walk(root: str, exclude: Exclude, owned: Owned, stats: WalkStats) -> Iterator[Seen]:
    """Every entry under `root` (a resolved directory), depth first, as found."""
    try:
        top = os.lstat(root)
    except OSError:
        stats.unreadable.append(root)
        return
    mounts = mount_points() - {root}
    device = top.st_dev
    levels: list[_Level] = []
    opened = _open(root, stats)
    if opened is None:
        return
    levels.append((opened, root, "", top, 0))
    try:
        yield from _descend(levels, _Bounds(device, mounts, exclude, owned), stats)
    finally:  # a walk abandoned half-way closes every directory it holds open
        for level in levels:
            _close(level[0])


@dataclass(frozen=True, slots=True)
class _Bounds:
    """Where a walk does not go."""

    device: int
    mounts: frozenset[str]
    exclude: Exclude
    owned: Owned

    def leave(self, path: str, rel: str, st: os.stat_result, stats: WalkStats) -> bool:
        """Whether not to enter this directory (nothing in it can be an orphan)."""
        if self.exclude.match(rel):
            return True
        inode = (st.st_dev, st.st_ino)
        if st.st_dev != self.device or path in self.mounts or self.owned.owns(path, inode):
            stats.skipped.append(path)
            return True
        return False


def _descend(levels: list[_Level], bounds: _Bounds, stats: WalkStats) -> Iterator[Seen]:
    while levels:
        iterator, path, rel, st, count = levels[-1]
        entry = next(iterator, None)
        if entry is None:
            levels.pop()
            _close(iterator)
            if count == 0 and rel:
                yield seen_from(path, rel, st, empty=True)
            continue
        levels[-1] = (iterator, path, rel, st, count + 1)
        stats.entries += 1
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        try:
            child = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # gone meanwhile
        if not stat.S_ISDIR(child.st_mode):
            if bounds.owned.owns(entry.path, (child.st_dev, child.st_ino)):
                stats.skipped.append(entry.path)
            else:
                yield seen_from(entry.path, child_rel, child)
            continue
        if bounds.leave(entry.path, child_rel, child, stats):
            continue
        if len(levels) >= MAX_DEPTH:
            stats.skipped.append(entry.path)
            continue
        inner = _open(entry.path, stats)
        if inner is not None:
            levels.append((inner, entry.path, child_rel, child, 0))


def _open(path: str, stats: WalkStats) -> Iterator[os.DirEntry[str]] | None:
    try:
        return os.scandir(path)
    except OSError:
        stats.unreadable.append(path)
        return None


def _close(iterator: Iterator[os.DirEntry[str]]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
