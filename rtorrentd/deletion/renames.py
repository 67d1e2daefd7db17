"""Renames that never overwrite and never follow a link: the recycle bin's only move.

A bin entry is made by rename(2) alone: the data keeps its inode, no byte is
copied, and a bin on another filesystem fails with EXDEV instead of turning into
a copy. `rename_noreplace` is renameat2(RENAME_NOREPLACE): a name that appeared at
the destination since it was checked is never replaced. Where the filesystem or
kernel cannot do that (EINVAL, ENOSYS), the destination is checked with lstat
just before a plain rename, which leaves the instant between the two.

`open_walk` reaches a directory from an anchor one component at a time with
O_NOFOLLOW (as `carry_out` does), creating the missing ones when asked: a
symlinked directory on the way stops the walk instead of redirecting the move.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1


def _renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def rename_noreplace(src: str, src_dir: int, dst: str, dst_dir: int) -> None:
    """Rename `src` (in directory fd `src_dir`) to `dst` (in `dst_dir`), never
    replacing an existing `dst`: raises FileExistsError then, OSError(EXDEV) across
    filesystems, FileNotFoundError when `src` is gone."""
    if _RENAMEAT2 is not None:
        call = _RENAMEAT2
        result = call(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), _RENAME_NOREPLACE)  # type: ignore[operator]
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), src, None, dst)
    try:
        os.stat(dst, dir_fd=dst_dir, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)


def plain(name: str) -> bool:
    """Whether `name` is one path component (no '/', not '.' or '..', no NUL)."""
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


@contextmanager
def open_walk(
    anchor: str,
    anchor_key: tuple[int, int] | None,
    parts: Sequence[str],
    *,
    create: bool = False,
    mode: int = 0o755,
) -> Iterator[int]:
    """A descriptor of `anchor`/`parts`, reached without following links; closed on
    exit. `anchor_key` (st_dev, st_ino), when given, must be the anchor's; each
    directory on the way must be on the anchor's filesystem. With `create`, missing
    directories are made (`mode`). Raises OSError saying why."""
    if not all(plain(p) for p in parts):
        raise OSError(errno.EINVAL, f"not a plain path below {anchor!r}: {'/'.join(parts)!r}")
    fd = os.open(anchor, _DIR_FLAGS)
    try:
        st = os.fstat(fd)
        if anchor_key is not None and (st.st_dev, st.st_ino) != anchor_key:
            raise OSError(errno.ESTALE, f"{anchor!r} is not the directory it was")
        for name in parts:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(name, mode, dir_fd=fd)
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
            if os.fstat(fd).st_dev != st.st_dev:
                raise OSError(errno.EXDEV, f"another filesystem is mounted at {name!r}")
    except BaseException:
        os.close(fd)
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def sync_directory(fd: int) -> None:
    """fsync a directory, so the renames and names in it survive a power cut."""
    os.fsync(fd)
