"""Checks made before a deletion touches rtorrent: can it be carried out at all, and
is the disk the one rtorrentd started with?

A deletion that cannot be carried out (no write permission on a directory, a
read-only filesystem, an immutable or append-only file or directory) must be found
before `d.stop`/`d.close`: found afterwards it leaves a stopped torrent that its
rule (`complete and ...`) may never match again, a permanent stop nobody asked for.

A vanished disk is not a finished deletion: an unmounted disk leaves its empty
mount point behind, where every file of every torrent is "already gone". Each
allowed root's filesystem (device and mount point) is remembered when the daemon
starts (`remember`); once a root is no longer that filesystem, nothing under it is
deleted or erased.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rtorrentd.deletion import mounts
from rtorrentd.deletion.model import Deletion
from rtorrentd.errors import UnsafeDeletion

# linux/fs.h: FS_IOC_GETFLAGS and the inode flags that make unlink fail even for root.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IMMUTABLE_FL = 0x10
_FS_APPEND_FL = 0x20


@dataclass(frozen=True, slots=True)
class FsId:
    """Which filesystem a path is on: its device and the mount point holding it."""

    device: int
    mount: str


# Allowed root (as configured) -> its filesystem when the daemon started (None:
# the root could not be examined then).
Filesystems = Mapping[str, FsId | None]


def _mount_points() -> tuple[str, ...]:
    """Every mount point this process sees and "/", longest first."""
    return tuple(sorted(mounts.mount_points() | {"/"}, key=len, reverse=True))


def _mount_of(real: str, mounts: Sequence[str]) -> str:
    for point in mounts:
        if real == point or real.startswith(point.rstrip("/") + "/"):
            return point
    return "/"


def identify(path: str, mounts: Sequence[str] | None = None) -> FsId | None:
    """The filesystem `path` (followed through symlinks) is on now, or None."""
    try:
        real = os.path.realpath(path, strict=True)
        device = os.stat(real).st_dev
    except (OSError, ValueError):
        return None
    return FsId(device, _mount_of(real, _mount_points() if mounts is None else mounts))


def remember(roots: Sequence[str], known: Filesystems | None = None) -> dict[str, FsId | None]:
    """Each root's filesystem now; a root already `known` keeps its first record
    (a reload must not bless an unmount), unless it could not be examined then."""
    mounts = _mount_points()
    previous = known or {}
    return {root: previous.get(root) or identify(root, mounts) for root in dict.fromkeys(roots)}


def check_filesystem(real_root: str, filesystems: Filesystems) -> None:
    """Refuse when an allowed root holding `real_root` is not the filesystem it was.

    Raises `UnsafeDeletion`.
    """
    mounts = _mount_points()
    for root, then in filesystems.items():
        try:
            real = os.path.realpath(root)
        except (OSError, ValueError):
            real = root
        if not (real_root == real or real_root.startswith(real.rstrip("/") + "/")):
            continue
        now = identify(root, mounts)
        if then is None or now != then:
            raise UnsafeDeletion(
                f"refusing to delete under {root!r}: it is not the filesystem it was when "
                f"rtorrentd started ({_describe(then)}; now {_describe(now)}). Is the disk "
                "unmounted? Files missing there are not deleted ones. Mount it again, or "
                "restart rtorrentd to accept the new filesystem"
            )


def _describe(fs: FsId | None) -> str:
    return "not readable" if fs is None else f"device {fs.device}, mounted at {fs.mount}"


def check_writable(deletion: Deletion) -> None:
    """Refuse a deletion whose files could not all be unlinked, before anything is
    stopped: no write permission on a directory, a read-only filesystem, or an
    immutable or append-only file or directory. Raises `UnsafeDeletion`."""
    for directory in dict.fromkeys(posixpath.dirname(p) for p in deletion.to_unlink):
        problem = _directory_problem(directory)
        if problem:
            raise _cannot(directory, problem)
    for path in deletion.to_unlink:
        if _flags(path) & (_FS_IMMUTABLE_FL | _FS_APPEND_FL):
            raise _cannot(path, "the file is immutable or append-only (chattr)")


def _directory_problem(directory: str) -> str:
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "its filesystem is mounted read-only"
    except OSError as exc:
        return f"it cannot be examined ({exc.strerror})"
    if _flags(directory) & (_FS_IMMUTABLE_FL | _FS_APPEND_FL):
        return "the directory is immutable or append-only (chattr)"
    effective = os.access in os.supports_effective_ids  # the daemon's uid, not the real one
    if not os.access(directory, os.W_OK | os.X_OK, effective_ids=effective):
        return "rtorrentd may not write to the directory"
    return ""


def _flags(path: str) -> int:
    """The inode flags (chattr) of `path`, not followed if a symlink; 0 if unknown."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return 0
    try:
        reply = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(8))
    except OSError:
        return 0  # the filesystem keeps no such flags
    finally:
        os.close(fd)
    flags: int = struct.unpack_from("i", reply)[0]
    return flags


def _cannot(path: str, why: str) -> UnsafeDeletion:
    return UnsafeDeletion(
        f"refusing to delete: {path!r} cannot be changed ({why}), so the deletion could "
        "not be carried out; nothing was stopped. Fix the permission, then the next poll "
        "deletes it"
    )
