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
listed is counted and left. An empty directory that /etc/fstab names as a mount
point, or that lies on the way to one, is never yielded (a disk not mounted now
leaves it empty): it is counted in `mount_points`; nor is one an rtorrent watches
for new .torrent files (`watched`).

Each directory is opened with O_NOFOLLOW and listed through that descriptor, and
only if it is still the directory its parent's listing showed (device, inode): a
directory swapped for a symlink meanwhile is skipped, never walked through.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from rtorrentd.deletion.mounts import Planned, mount_points
from rtorrentd.engine.orphans import Exclude, Inode, Kind, Seen

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 256  # open directories at once, at most (each holds two descriptors)
# An open directory: its descriptor and entries, path, path relative to the root,
# lstat, entries seen.
_Level = tuple["_Dir", str, str, os.stat_result, int]


@dataclass(slots=True)
class WalkStats:
    """What a walk met besides entries: for the report."""

    entries: int = 0
    unreadable: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # mounts, other filesystems, owned
    mount_points: list[str] = field(default_factory=list)  # empty, planned in fstab
    watched: list[str] = field(default_factory=list)  # empty, watched by an rtorrent


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


def walk(
    root: str,
    exclude: Exclude,
    owned: Owned,
    stats: WalkStats,
    *,
    planned: Planned | None = None,
    watched: frozenset[Inode] = frozenset(),
) -> Iterator[Seen]:
    """Every entry under `root` (a resolved directory), depth first, as found; no
    empty directory `planned` keeps (the mount points of /etc/fstab) nor one of
    `watched` (the directories an rtorrent watches)."""
    try:
        top = os.lstat(root)
    except OSError:
        stats.unreadable.append(root)
        return
    mounts = mount_points() - {root}
    device = top.st_dev
    levels: list[_Level] = []
    opened = _open(None, root, root, top, stats)
    if opened is None:
        return
    levels.append((opened, root, "", top, 0))
    try:
        bounds = _Bounds(device, mounts, exclude, owned, planned or Planned(), watched)
        yield from _descend(levels, bounds, stats)
    finally:  # a walk abandoned half-way closes every directory it holds open
        for level in levels:
            level[0].close()


@dataclass(frozen=True, slots=True)
class _Bounds:
    """Where a walk does not go."""

    device: int
    mounts: frozenset[str]
    exclude: Exclude
    owned: Owned
    planned: Planned
    watched: frozenset[Inode]

    def keep_empty(self, path: str, st: os.stat_result, stats: WalkStats) -> bool:
        """Whether this empty directory stays: one an rtorrent watches, a mount point
        planned (or on the way to one), or any while the plans cannot be read."""
        if (st.st_dev, st.st_ino) in self.watched:
            stats.watched.append(path)
        elif path in self.planned.keep:
            stats.mount_points.append(path)
        elif not self.planned.problem:
            return False
        stats.skipped.append(path)
        return True

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
        directory, path, rel, st, count = levels[-1]
        entry = next(directory.entries, None)
        if entry is None:
            levels.pop()
            directory.close()
            if count == 0 and rel and not bounds.keep_empty(path, st, stats):
                yield seen_from(path, rel, st, empty=True)
            continue
        levels[-1] = (directory, path, rel, st, count + 1)
        stats.entries += 1
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        child_path = os.path.join(path, entry.name)  # listed by descriptor: .path is the name
        try:
            child = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # gone meanwhile
        if not stat.S_ISDIR(child.st_mode):
            if bounds.owned.owns(child_path, (child.st_dev, child.st_ino)):
                stats.skipped.append(child_path)
            else:
                yield seen_from(child_path, child_rel, child)
            continue
        if bounds.leave(child_path, child_rel, child, stats):
            continue
        if len(levels) >= MAX_DEPTH:
            stats.skipped.append(child_path)
            continue
        inner = _open(directory.fd, entry.name, child_path, child, stats)
        if inner is not None:
            levels.append((inner, child_path, child_rel, child, 0))


@dataclass(frozen=True, slots=True)
class _Dir:
    """An open directory: a descriptor (its entries are stat'ed and its
    subdirectories opened relative to it) and its entries, streaming."""

    fd: int
    entries: Iterator[os.DirEntry[str]]

    def close(self) -> None:
        """Close both (scandir holds a duplicate of the descriptor)."""
        close = getattr(self.entries, "close", None)
        if close is not None:
            close()
        os.close(self.fd)


def _open(
    parent: int | None, name: str, path: str, seen: os.stat_result, stats: WalkStats
) -> _Dir | None:
    """Directory `name` in `parent` (a descriptor; None: `name` is the absolute
    root), opened without following a link, if it is still the directory `seen`
    (its lstat in the listing): one swapped for a symlink or another directory
    since is skipped, never walked."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        swapped = exc.errno in (errno.ELOOP, errno.ENOTDIR)
        (stats.skipped if swapped else stats.unreadable).append(path)
        return None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            stats.skipped.append(path)
            os.close(fd)
            return None
        return _Dir(fd, os.scandir(fd))
    except OSError:
        stats.unreadable.append(path)
        os.close(fd)
        return None
