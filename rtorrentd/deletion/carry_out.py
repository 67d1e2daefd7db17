"""Carry out a planned deletion: unlink the files, then remove the emptied directories.

Strategy:
- `carry_out` walks from the allowed root one component at a time with
  O_DIRECTORY|O_NOFOLLOW and unlinks relative to the parent's descriptor, so a
  directory swapped for a symlink after planning stops the walk instead of
  redirecting it. What remains is the instant between the final lstat and the
  unlink inside an already opened directory, which only someone with write
  access to the torrent's own directory can use.
- Each entry must still be what was planned (`Identity`, a directory's inode),
  else it is left alone and the outcome says why.
- Only `os.unlink` and `os.rmdir`: never rmtree, never a followed link. A directory
  is removed only if it is empty, so anything a user added keeps it.
- The recycle bin changes one call: with a `Dispose` (`trash.EntryWriter.take`),
  each checked file is renamed into the bin entry instead of unlinked. Every check
  before it, and the pruning after, are the same.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rtorrentd.deletion.model import (
    Deletion,
    Fate,
    Identity,
    Location,
    Note,
    Outcome,
    PlannedDir,
    PlannedFile,
)

# Instead of unlinking: (the entry's parts below its allowed root, the parent's
# descriptor, its name) -> None, raising OSError. `trash.EntryWriter.take`.
Dispose = Callable[[Sequence[str], int, str], None]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Gone(Exception):
    """The entry is not there any more: nothing to do."""


class _Skip(Exception):
    """The entry is not what was planned, or cannot be removed: leave it, say why."""


def carry_out(deletion: Deletion, dispose: Dispose | None = None) -> Outcome:
    """Unlink the planned files, then remove the planned directories that are empty.

    Each entry is re-checked just before it is touched and left alone (listed in
    `skipped`) if it changed; one that vanished counts as already gone, so running
    a plan twice, or after a crash, is harmless. With `dispose` (the recycle bin)
    each file is handed to it instead of unlinked, and frees nothing yet.
    """
    deleted: list[str] = []
    gone: list[str] = []
    skipped: list[Note] = []
    freed = 0
    for planned in deletion.files:
        if planned.fate is not Fate.UNLINK:
            continue
        try:
            freed += _unlink(planned, dispose)
            deleted.append(planned.path)
        except _Gone:
            gone.append(planned.path)
        except _Skip as exc:
            skipped.append(Note(planned.path, str(exc)))
    removed, kept = _prune(deletion.prune)
    return Outcome(tuple(deleted), tuple(gone), tuple(skipped), removed, kept, freed)


def _prune(dirs: Sequence[PlannedDir]) -> tuple[tuple[str, ...], tuple[Note, ...]]:
    removed: list[str] = []
    kept: list[Note] = []
    for planned in dirs:  # deepest first, so a parent can empty after its children
        try:
            _rmdir(planned)
            removed.append(planned.path)
        except _Gone:
            kept.append(Note(planned.path, "no longer there"))
        except _Skip as exc:
            kept.append(Note(planned.path, str(exc)))
    return tuple(removed), tuple(kept)


def _unlink(planned: PlannedFile, dispose: Dispose | None = None) -> int:
    """Unlink one file if it is still the planned entry (or hand it to `dispose`);
    the bytes that freed."""
    name = planned.location.parts[-1]
    with _parent_of(planned.location) as fd:
        st = _lstat_at(name, fd)
        if planned.identity is None or Identity.of(st) != planned.identity:
            raise _Skip("it changed since it was planned (another file or type): left alone")
        try:
            if dispose is None:
                os.unlink(name, dir_fd=fd)
            else:
                dispose(planned.location.parts, fd, name)
                return 0  # in the bin: freed when the bin is emptied
        except FileNotFoundError as exc:
            raise _Gone from exc
        except OSError as exc:
            verb = "unlink" if dispose is None else "the move into the recycle bin"
            raise _Skip(f"{verb} failed ({exc.strerror or exc})") from exc
    # Space held open by a process (rtorrent before d.close) is freed only on close.
    return st.st_size if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 else 0


def _rmdir(planned: PlannedDir) -> None:
    name = planned.location.parts[-1]
    with _parent_of(planned.location) as fd:
        st = _lstat_at(name, fd)
        if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != planned.key:
            raise _Skip("it changed since it was planned: left alone")
        try:
            os.rmdir(name, dir_fd=fd)
        except FileNotFoundError as exc:
            raise _Gone from exc
        except OSError as exc:
            raise _Skip(_rmdir_failure(exc)) from exc


def _rmdir_failure(exc: OSError) -> str:
    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
        return "not empty (it holds something that is not this torrent's): kept"
    if exc.errno == errno.EBUSY:
        return "in use or a mount point: kept"
    return f"rmdir failed ({exc.strerror}): kept"


@contextmanager
def _parent_of(location: Location) -> Iterator[int]:
    fd = _open_parent(location)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_parent(location: Location) -> int:
    """Open the entry's parent by walking down from the anchor without following links."""
    if not all(_is_plain_name(name) for name in location.parts):
        raise _Skip("the planned path has a component that is not a plain name")
    fd = _open_dir(location.anchor, None)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != location.anchor_key:
            raise _Skip(f"the allowed root {location.anchor!r} is not the planned directory")
        for name in location.parts[:-1]:
            child = _open_dir(name, fd)
            os.close(fd)
            fd = child
            if os.fstat(fd).st_dev != location.anchor_key[0]:
                raise _Skip(f"another filesystem is mounted at {name!r} since planning")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\0" not in name


def _open_dir(name: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError as exc:
        raise _Gone from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _Skip(f"{name!r} is now a symlink or not a directory: not followed") from exc
        raise _Skip(f"cannot open {name!r} ({exc.strerror})") from exc


def _lstat_at(name: str, dir_fd: int) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise _Gone from exc
    except OSError as exc:
        raise _Skip(f"cannot examine it ({exc.strerror})") from exc


def open_planned(planned: PlannedFile) -> int:
    """A descriptor to read exactly the planned entry, reached the way `carry_out`
    reaches it (from the allowed root, no link followed on the way).

    The entry must still have its planned identity, and so must what is opened, so
    bytes read through it are the bytes of the file that `carry_out` will unlink
    (which checks that identity once more). A planned symlink is opened through
    (reading is harmless; only the link is unlinked). Raises `OSError` saying why.
    """
    name = planned.location.parts[-1]
    try:
        with _parent_of(planned.location) as parent:
            st = _lstat_at(name, parent)
            if planned.identity is None or Identity.of(st) != planned.identity:
                raise OSError(errno.ESTALE, "it changed since it was planned")
            link = stat.S_ISLNK(st.st_mode)
            flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if link else os.O_NOFOLLOW)
            fd = os.open(name, flags, dir_fd=parent)
    except _Gone as exc:
        raise OSError(errno.ENOENT, "it is gone since it was planned") from exc
    except _Skip as exc:
        raise OSError(errno.ESTALE, str(exc)) from exc
    opened = os.fstat(fd)
    same = stat.S_ISREG(opened.st_mode) if link else Identity.of(opened) == planned.identity
    if not same:
        os.close(fd)
        raise OSError(errno.ESTALE, "it changed since it was planned")
    return fd
