"""One recycle-bin entry on disk: its manifest files, its lock, making it
(`create_entry`, `EntryWriter`), moving its paths back (`move_back`, `roll_back`),
and emptying it (`discard`). See `trash` for the layout and the crash-safety.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import posixpath
import secrets
import shutil
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace

from rtorrentd.deletion.model import Note
from rtorrentd.deletion.renames import open_walk, plain, rename_noreplace
from rtorrentd.deletion.trash_model import (
    COMPLETE,
    DATA,
    METAINFO,
    PARTIAL,
    RESTORING,
    Entry,
    Item,
    Manifest,
    manifest_to_json,
)
from rtorrentd.errors import TrashError
from rtorrentd.logger import get_logger

log = get_logger("rtorrentd.deletion.trash")

NEW, EMPTYING = ".new-", ".emptying-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


# --- manifests ---------------------------------------------------------------------------


def _write_file(directory: int, name: str, payload: bytes, *, sync: bool = True) -> None:
    """Write `name` in `directory` durably: a temporary name, fsync, rename, fsync
    of the directory (unless `sync` is false: the caller syncs it later)."""
    temporary = name + ".tmp"
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=directory
    )
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    if sync:
        os.fsync(directory)


def _write_manifest(directory: int, name: str, manifest: Manifest) -> None:
    _write_file(directory, name, json.dumps(manifest_to_json(manifest)).encode())


def ensure_bin(bin_dir: str) -> None:
    """Make the bin directory (mode 0700) if it is not there; its parent must be."""
    try:
        os.mkdir(bin_dir, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise TrashError(f"cannot make the recycle bin {bin_dir!r} ({exc.strerror})") from exc


# --- the lock, emptying ------------------------------------------------------------------


@contextmanager
def held(entry_dir: str) -> Iterator[int | None]:
    """The entry's directory, locked (flock): its descriptor, or None when another
    process holds it (then leave the entry alone)."""
    try:
        fd = os.open(entry_dir, _DIR_FLAGS)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


def discard(entry: Entry) -> bool:
    """Empty one entry: renamed aside at once (a listing no longer shows it), then
    removed. False when another process holds it (nothing done)."""
    with held(entry.path) as fd:
        if fd is None or not os.path.exists(os.path.join(entry.path, entry.state)):
            return False
        aside = os.path.join(entry.bin, EMPTYING + entry.name)
        os.rename(entry.path, aside)
        sync(entry.bin)
        remove_tree(aside)
    return True


def remove_tree(path: str) -> None:
    # The bin's own directory, made by rtorrentd: rmtree uses fd-based, link-safe
    # removal on Linux; data in the bin has been given up already.
    shutil.rmtree(path, ignore_errors=False)


def sync(directory: str) -> None:
    fd = os.open(directory, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_name(now: float, label: str) -> str:
    """An entry's directory name: UTC time, the torrent's hash prefix or "orphan",
    a random tail (two entries in one second never collide)."""
    when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{when}-{label}-{secrets.token_hex(3)}"


# --- making an entry ----------------------------------------------------------------------


class EntryWriter:
    """An entry being made (`create_entry`): `take` renames one path into it, and
    `commit` makes it complete with what was taken."""

    def __init__(self, bin_dir: str, name: str, fd: int, draft: Manifest) -> None:
        self.bin, self.name, self.fd, self.draft = bin_dir, name, fd, draft
        self.taken: list[Item] = []
        # The entry's own directories, opened once (it is ours, mode 0700): a
        # torrent of thousands of files in a few directories costs a rename each.
        self._dirs: dict[tuple[str, ...], int] = {(): os.open(DATA, _DIR_FLAGS, dir_fd=fd)}

    def _dir(self, parts: tuple[str, ...]) -> int:
        """The entry's data directory at `parts`, made if missing."""
        found = self._dirs.get(parts)
        if found is None:
            parent = self._dir(parts[:-1])
            with suppress(FileExistsError):
                os.mkdir(parts[-1], 0o700, dir_fd=parent)
            found = self._dirs[parts] = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        return found

    def close(self) -> None:
        """Close the directories `take` opened."""
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    @property
    def path(self) -> str:
        return os.path.join(self.bin, self.name)

    def take(self, parts: Sequence[str], parent: int, name: str) -> None:
        """Rename `name` (in directory fd `parent`, at `parts` below the root) into
        the entry's data, at the same place. Raises OSError (EXDEV: another
        filesystem; it is never copied)."""
        if not all(plain(p) for p in parts):
            raise OSError(errno.EINVAL, f"not a plain path: {'/'.join(parts)!r}")
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        rename_noreplace(name, parent, parts[-1], self._dir(tuple(parts[:-1])))
        self.taken.append(Item.of("/".join(parts), st))

    def write_metainfo(self, data: bytes) -> None:
        """Keep the torrent's .torrent in the entry."""
        _write_file(self.fd, METAINFO, data, sync=False)  # `commit` syncs the directory

    def commit(self) -> Entry:
        """The entry is complete: its manifest lists what was taken."""
        manifest = replace(self.draft, items=tuple(self.taken))
        payload = json.dumps(manifest_to_json(manifest)).encode()
        _write_file(self.fd, COMPLETE, payload, sync=False)
        os.unlink(PARTIAL, dir_fd=self.fd)
        os.fsync(self.fd)  # one sync: the metainfo's name, the manifest's, the partial gone
        return Entry(self.bin, self.name, manifest)


@contextmanager
def create_entry(bin_dir: str, draft: Manifest, label: str) -> Iterator[EntryWriter]:
    """A new entry holding nothing yet, its partial manifest (`draft`, listing every
    path that may be moved) durable before the caller's first `take`. Leaving the
    block without `commit` rolls the entry back (each taken path renamed back).
    Raises TrashError when the bin cannot be written."""
    ensure_bin(bin_dir)
    name = new_name(draft.created, label)
    making = os.path.join(bin_dir, NEW + name)
    try:
        os.mkdir(making, 0o700)
        fd = os.open(making, _DIR_FLAGS)
    except OSError as exc:
        raise TrashError(f"cannot make an entry in the recycle bin {bin_dir!r} ({exc})") from exc
    committed = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _write_manifest(fd, PARTIAL, draft)
        os.mkdir(DATA, 0o700, dir_fd=fd)
        os.rename(making, os.path.join(bin_dir, name))
        sync(bin_dir)
        writer = EntryWriter(bin_dir, name, fd, draft)
        try:
            yield writer
            committed = os.path.exists(os.path.join(writer.path, COMPLETE))
        finally:
            writer.close()
            if not committed:
                roll_back(Entry(bin_dir, name, draft, PARTIAL))
    except OSError as exc:
        raise TrashError(f"the recycle bin {bin_dir!r} cannot be written ({exc})") from exc
    finally:
        os.close(fd)


# --- moving back ---------------------------------------------------------


def roll_back(entry: Entry) -> tuple[Note, ...]:
    """Rename each of the entry's paths back where it was, when that place is free
    (its directories made again); then remove the entry if nothing is left in it.
    What cannot go back stays, and the entry becomes complete with just that
    (logged): nothing is lost, `trash restore` or `empty` decide later."""
    manifest = entry.manifest
    blocked: list[Note] = []
    left: list[Item] = []
    for item in reversed(manifest.items):
        why = move_back(entry, item)
        if why:
            blocked.append(Note(posixpath.join(manifest.root, item.path), why))
            left.append(item)
    if left:
        kept = replace(manifest, items=tuple(reversed(left)))
        fd = os.open(entry.path, _DIR_FLAGS)
        try:
            _write_manifest(fd, COMPLETE, kept)
            for state in (PARTIAL, RESTORING):
                if os.path.exists(os.path.join(entry.path, state)):
                    os.unlink(state, dir_fd=fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        if entry.name.startswith(NEW):  # listed from now on
            os.rename(entry.path, os.path.join(entry.bin, entry.name.removeprefix(NEW)))
        for note in blocked:
            log.warning(
                "trash.rollback_blocked", entry=entry.name, path=note.path, reason=note.reason
            )
    else:
        aside = os.path.join(entry.bin, EMPTYING + entry.name)
        os.rename(entry.path, aside)
        remove_tree(aside)
    return tuple(blocked)


def move_back(entry: Entry, item: Item) -> str:
    """Move one item from the entry's data back to its place; "" if done or if it
    was never moved, else why it stays."""
    parts = tuple(item.path.split("/"))
    try:
        with open_walk(entry.path, None, (DATA, *parts[:-1])) as here:
            st = os.stat(parts[-1], dir_fd=here, follow_symlinks=False)
            if not item.same(st):
                return "the entry holds another file at its place"
            manifest = entry.manifest
            with open_walk(manifest.root, manifest.root_key, parts[:-1], create=True) as there:
                rename_noreplace(parts[-1], here, parts[-1], there)
    except FileNotFoundError:
        return ""  # never moved into the entry (or back already)
    except FileExistsError:
        return "something else is at its place now"
    except OSError as exc:
        return f"cannot move it back ({exc.strerror or exc})"
    return ""


def set_state(entry: Entry, new: str) -> Entry:
    """Rename the entry's manifest to the state file `new` (fsync'd)."""
    fd = os.open(entry.path, _DIR_FLAGS)
    try:
        os.rename(entry.state, new, src_dir_fd=fd, dst_dir_fd=fd)
        os.fsync(fd)
    finally:
        os.close(fd)
    return Entry(entry.bin, entry.name, entry.manifest, new)


# --- restores cut short -------------------------------------------------------------------


def occupied(entry: Entry) -> tuple[str, ...]:
    """The places of the entry's paths where something is now."""
    root = entry.manifest.root
    return tuple(
        posixpath.join(root, i.path)
        for i in entry.manifest.items
        if os.path.lexists(posixpath.join(root, i.path))
    )


def take_back(entry: Entry) -> tuple[Note, ...]:
    """Each path still at its place, as it was moved out, renamed into the entry again."""
    left = []
    manifest = entry.manifest
    for item in manifest.items:
        parts = tuple(item.path.split("/"))
        try:
            with open_walk(manifest.root, manifest.root_key, parts[:-1]) as there:
                st = os.stat(parts[-1], dir_fd=there, follow_symlinks=False)
                if not item.same(st):
                    left.append(Note(item.path, "another file is at its place"))
                    continue
                with open_walk(entry.path, None, (DATA, *parts[:-1]), create=True) as here:
                    rename_noreplace(parts[-1], there, parts[-1], here)
        except FileNotFoundError:
            continue
        except OSError as exc:
            left.append(Note(item.path, str(exc)))
    return tuple(left)


def recover_restoring(entry: Entry, loaded: Collection[str] | None) -> bool:
    """A restore a crash cut short: finish it when there is no torrent to wait for or
    rtorrent has it (`loaded`), else take the paths back into the bin. False when
    that cannot be told (`loaded` None for a torrent entry): left for later."""
    record = entry.manifest.torrent
    if record is not None and loaded is None:
        return False
    if record is None or record.hash in loaded:  # type: ignore[operator]
        roll_back(entry)  # every path back; what cannot go stays, complete
        log.info("trash.restored", entry=entry.name, kind=entry.manifest.kind, recovered=True)
        return True
    left_notes = take_back(entry)
    set_state(entry, COMPLETE)
    log.info("trash.restore_undone", entry=entry.name, hash=record.hash, left=len(left_notes))
    return True
