"""Orphan cleanup at the edge: scan, then re-check and move each orphan.

`scan` refuses the whole scan (`Scan.refused`) when the listing cannot be trusted
(`orphan_listing`), when an allowed root is not the filesystem it was when the
daemon started (an unmounted disk), or when an rtorrent that nobody listed uses
files under an allowed root (its torrents are unknown). Otherwise it walks every
allowed root (`orphan_walk`, in a worker thread), classifies each entry
(`engine.orphans`) and keeps the orphans within `max_files` and `max_bytes`.
Never orphans either: what rtorrentd and rtorrent own (`owned`: every session
directory, the bin, the state directory, the configuration; and every file an
instance's rtorrent process holds open, its log included), and an empty directory
that /etc/fstab or a systemd .mount/.automount unit names as a mount point, or
that lies on the way to one (a disk not mounted now leaves it empty), or that an
instance's rtorrent watches for new .torrent files (inotify:
`directory.watch.added`). When the mount tables cannot be read, no empty
directory is removed and the scan says so (`Scan.caution`).

`clean` then, immediately before moving: asks every instance for the torrents
loaded since (`orphan_listing.refresh`), and stats each orphan again: the same
entry (device, inode, kind, hard links; a file's size and mtime), still old by
mtime and ctime at this moment, still unlisted, not excluded, a directory still
empty. Anything created, linked, renamed or listed meanwhile stays. Files and
links go to the recycle bin through `move` (one call per allowed root); empty
directories are removed with `rmdir`, which the kernel refuses if anything
appeared in them (they hold no data). The re-check and the `rmdir` look the name
up in its parent's descriptor, reached from the root one component at a time
without following a link (`renames.open_walk`): a directory on the way swapped for
a symlink since the scan stops them, never redirects them.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

import anyio.to_thread

from rtorrentd.config.model import OrphanSettings
from rtorrentd.deletion import mounts, preflight
from rtorrentd.deletion.model import Identity
from rtorrentd.deletion.mounts import Planned, foreign_mount_sources, planned_mounts
from rtorrentd.deletion.orphan_listing import (
    Listing,
    Source,
    read_listing,
    refresh,
    watched_directories,
)
from rtorrentd.deletion.orphan_walk import Owned, WalkStats, seen_from, walk
from rtorrentd.deletion.renames import open_walk
from rtorrentd.deletion.spelling import Spellings, Unspellable
from rtorrentd.deletion.unlisted import open_files, unlisted_rtorrents
from rtorrentd.engine.orphans import (
    Budget,
    Exclude,
    Inode,
    Kind,
    Listed,
    Seen,
    classify,
    compile_excludes,
    orphan_reason,
)
from rtorrentd.errors import OrphanScanRefused, RtorrentdError

# Moves files and links (path, identity at the re-check) under one allowed root
# into one recycle-bin entry, leaving any that is no longer that entry; returns the
# paths moved and (path, why) for those left.
Moved = tuple[Sequence[str], Sequence[tuple[str, str]]]
Move = Callable[[str, Sequence[tuple[str, Identity]]], Moved]


@dataclass(frozen=True, slots=True)
class Orphan:
    """One orphan found by a scan, under the resolved allowed root `root`."""

    root: str
    seen: Seen
    reason: str


@dataclass(frozen=True, slots=True)
class Scan:
    """What one scan found; `refused` says why nothing may be moved ("" if it may)."""

    refused: str
    orphans: tuple[Orphan, ...] = ()
    held: int = 0  # orphans beyond max_files / max_bytes, for the next scan
    held_bytes: int = 0
    instances: tuple[str, ...] = ()
    torrents: int = 0
    listed_files: int = 0
    entries: int = 0  # entries walked
    unreadable: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    seconds: float = 0.0
    mount_points: tuple[str, ...] = ()  # empty directories kept: fstab plans a mount there
    watched: tuple[str, ...] = ()  # empty directories kept: an rtorrent watches them
    caution: str = ""  # what made the scan keep more than it would (fstab unread)

    @property
    def bytes(self) -> int:
        """What the orphans found hold (files and links)."""
        return sum(o.seen.size for o in self.orphans if o.seen.kind is not Kind.DIR)


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What became of one orphan: `moved` (to the bin), `removed` (an empty
    directory), `kept` (the re-check found it changed, listed or young) or
    `failed`; `detail` says why."""

    orphan: Orphan
    result: str
    detail: str = ""


@dataclass(slots=True)
class _Found:
    orphans: list[Orphan] = field(default_factory=list)
    stats: WalkStats = field(default_factory=WalkStats)
    foreign: str = ""  # why the scan is refused: a session no instance reports


# What rtorrent keeps in its session directory (session.path): its lock, and each
# torrent's state beside its metainfo. One of these where no configured instance
# keeps its session is an rtorrent nobody listed; its torrents' files are unknown.
_SESSION_FILE = re.compile(
    r"rtorrent\.lock|[0-9A-Fa-f]{40}\.torrent\.(?:libtorrent_resume|rtorrent)"
)


def resolve_roots(roots: Sequence[str]) -> list[str]:
    """Each allowed root resolved, and spelled as its directories store it (a
    case-insensitive filesystem finds `/mnt/USB` stored as `/mnt/usb`: the walk's
    paths must be the listing's); refuses one that is missing or not a directory."""
    real: list[str] = []
    spellings = Spellings()
    for root in roots:
        try:
            path = spellings.canonical(os.path.realpath(root))
        except Unspellable as exc:
            raise OrphanScanRefused(
                f"the allowed root {root!r} is stored under several spellings or none its "
                "directory lists (a case-insensitive filesystem)"
            ) from exc
        if not os.path.isdir(path):
            raise OrphanScanRefused(f"the allowed root {root!r} is not a directory here")
        real.append(path)
    return list(dict.fromkeys(real))


def check_filesystems(filesystems: preflight.Filesystems | None) -> None:
    """Refuse when an allowed root is not the filesystem it was when the daemon
    started: on an unmounted disk's mount point every torrent's file is missing."""
    if filesystems is None:
        return
    for root, then in filesystems.items():
        now = preflight.identify(root)
        if then is None or now != then:
            raise OrphanScanRefused(
                f"the allowed root {root!r} is not the filesystem it was when rtorrentd "
                "started (an unmounted disk?); mount it again, or restart rtorrentd"
            )


async def scan(
    sources: Sequence[Source],
    roots: Sequence[str],
    settings: OrphanSettings,
    *,
    now: float,
    owned: Collection[str] = (),
    filesystems: preflight.Filesystems | None = None,
    fstab: str | None = None,
    unit_dirs: Sequence[str] | None = None,
) -> tuple[Scan, Listing | None]:
    """One scan (see the module doc); the listing is kept for `clean`. `fstab` and
    `unit_dirs`: the filesystem table and systemd's unit directories whose mount
    points stay (default `mounts.FSTAB`, `mounts.UNIT_DIRS`)."""
    started = time.monotonic()
    labels = tuple(source.label for source in sources)
    try:
        real = resolve_roots(roots)
        check_filesystems(filesystems)
        listing = await read_listing(sources)
        await _check_unlisted(real, listing)
    except OrphanScanRefused as exc:
        return Scan(str(exc), instances=labels, seconds=time.monotonic() - started), None
    held_open = await anyio.to_thread.run_sync(open_files, listing.pids)
    watched = await anyio.to_thread.run_sync(watched_directories, listing.pids)
    keep = await anyio.to_thread.run_sync(Owned.of, [*owned, *listing.sessions, *held_open])
    budget = Budget(settings.max_files, settings.max_bytes)
    judge = _Judge(listing.listed, settings, compile_excludes(settings.exclude), labels)
    units = mounts.UNIT_DIRS if unit_dirs is None else unit_dirs
    planned = await anyio.to_thread.run_sync(planned_mounts, fstab or mounts.FSTAB, units)
    # Read-only: a walk stuck on a hung filesystem is abandoned at the deadline.
    walk_roots = functools.partial(
        _find, real, keep, judge, now, budget, planned=planned, watched=watched
    )
    found = await anyio.to_thread.run_sync(walk_roots, abandon_on_cancel=True)
    result = Scan(
        "",
        tuple(found.orphans),
        budget.held,
        budget.held_bytes,
        labels,
        listing.torrents,
        listing.listed.files,
        found.stats.entries,
        tuple(found.stats.unreadable),
        tuple(found.stats.skipped),
        time.monotonic() - started,
        mount_points=tuple(found.stats.mount_points),
        watched=tuple(found.stats.watched),
        caution=planned.problem,
    )
    if found.foreign:
        return replace(result, refused=found.foreign, orphans=(), held=0, held_bytes=0), None
    return result, listing


async def _check_unlisted(roots: Sequence[str], listing: Listing) -> None:
    found = await anyio.to_thread.run_sync(unlisted_rtorrents, roots, listing.pids)
    if found:
        other = found[0]
        raise OrphanScanRefused(
            f"an rtorrent that is not configured (pid {other.pid}) uses {other.path!r}: its "
            "torrents' files would look like orphans; list its URL in safety.other_rtorrents"
        )


@dataclass(frozen=True, slots=True)
class _Judge:
    """What classifies an entry: the listing, the settings, the globs; and, at the
    re-check, the directories a mount of any namespace has as its root now."""

    listed: Listed
    settings: OrphanSettings
    exclude: Exclude
    labels: tuple[str, ...] = ()
    mounted: frozenset[str] = frozenset()


def _find(
    roots: Sequence[str],
    owned: Owned,
    judge: _Judge,
    now: float,
    budget: Budget,
    *,
    planned: Planned | None = None,
    watched: frozenset[Inode] = frozenset(),
) -> _Found:
    """Walk every root and keep the orphans that fit the budget, in walk order;
    the others are only counted (memory: at most `max_files` orphans)."""
    found = _Found()
    for root in roots:
        nested = {r for r in roots if r != root and _within(r, root)}
        keep = Owned(owned.paths | nested, owned.inodes)
        for seen in walk(root, judge.exclude, keep, found.stats, planned=planned, watched=watched):
            if seen.kind is Kind.FILE and _SESSION_FILE.fullmatch(os.path.basename(seen.path)):
                # Stopped torrents hold no file open: /proc cannot tell (`unlisted`).
                found.foreign = (
                    f"{os.path.dirname(seen.path)!r} holds an rtorrent session that no "
                    "configured rtorrent reports as its session.path: that rtorrent's "
                    "torrents' files would look like orphans; list its URL in "
                    "safety.other_rtorrents, or exclude the directory if no rtorrent uses it"
                )
                return found
            if not classify(seen, judge.listed, now, judge.settings, judge.exclude).orphan:
                continue
            if budget.take(0 if seen.kind is Kind.DIR else seen.size):
                found.orphans.append(Orphan(root, seen, orphan_reason(seen, now, judge.labels)))
    return found


def _within(path: str, base: str) -> bool:
    base_parts = PurePosixPath(base).parts
    return PurePosixPath(path).parts[: len(base_parts)] == base_parts


async def clean(
    found: Scan,
    listing: Listing,
    settings: OrphanSettings,
    move: Move,
    *,
    clock: Callable[[], float] = time.time,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Cleaned]:
    """Re-check each orphan of `found` and move it (see the module doc)."""
    if found.refused or not found.orphans:
        return []
    await refresh(listing)  # raises OrphanScanRefused: nothing is moved then
    # A container started since the scan may have bound an empty orphan directory.
    mounted = await anyio.to_thread.run_sync(foreign_mount_sources)
    judge = _Judge(listing.listed, settings, compile_excludes(settings.exclude), (), mounted)
    done: list[Cleaned] = []
    for root, orphans in _by_root(found.orphans):
        if should_stop():
            break
        done += await anyio.to_thread.run_sync(
            _recheck_and_move, root, orphans, judge, clock(), move
        )
    return done


def _by_root(orphans: Sequence[Orphan]) -> Iterator[tuple[str, list[Orphan]]]:
    roots: dict[str, list[Orphan]] = {}
    for orphan in orphans:
        roots.setdefault(orphan.root, []).append(orphan)
    yield from roots.items()


def _recheck_and_move(
    root: str, orphans: Sequence[Orphan], judge: _Judge, now: float, move: Move
) -> list[Cleaned]:
    done: list[Cleaned] = []
    files: list[tuple[Orphan, Identity]] = []
    directories: list[Orphan] = []
    for orphan in orphans:
        if orphan.seen.kind is Kind.DIR:
            directories.append(orphan)
            continue
        why, identity = _recheck(orphan, judge, now)
        if why:
            done.append(Cleaned(orphan, "kept", why))
        else:
            files.append((orphan, identity))
    if files:
        done += _move(root, files, move)
    # Deepest first; rmdir fails on a directory that is not empty (nothing is lost).
    for orphan in sorted(directories, key=lambda o: o.seen.path.count("/"), reverse=True):
        done.append(_remove_directory(orphan, judge, now))
    return done


def _move(root: str, files: Sequence[tuple[Orphan, Identity]], move: Move) -> list[Cleaned]:
    by_path = {orphan.seen.path: orphan for orphan, _ in files}
    try:
        moved, left = move(root, [(orphan.seen.path, identity) for orphan, identity in files])
    except (OSError, RtorrentdError) as exc:
        return [Cleaned(orphan, "failed", str(exc)) for orphan, _ in files]
    done = [Cleaned(by_path[path], "moved") for path in moved if path in by_path]
    done += (Cleaned(by_path[path], "kept", why) for path, why in left if path in by_path)
    return done


@contextmanager
def _parent(orphan: Orphan) -> Iterator[int]:
    """A descriptor of the directory holding `orphan`, reached from its root one
    component at a time without following a link or leaving the root's filesystem:
    a directory on the way swapped for a symlink since the scan is never followed
    (OSError)."""
    with open_walk(orphan.root, None, orphan.seen.rel.split("/")[:-1]) as parent:
        yield parent


def _remove_directory(orphan: Orphan, judge: _Judge, now: float) -> Cleaned:
    """Re-check an empty directory and rmdir it, both through its parent's
    descriptor: the name is looked up there, never through a path a symlink may
    redirect. Between the re-check and the rmdir the name may at worst become
    another empty directory in that same parent (a symlink fails with ENOTDIR)."""
    name = os.path.basename(orphan.seen.rel)
    if orphan.seen.path in judge.mounted:
        return Cleaned(orphan, "kept", "a mount has it as its root now (a container's volume?)")
    try:
        with _parent(orphan) as parent:
            why, _identity = _recheck_at(parent, name, orphan, judge, now)
            if why:
                return Cleaned(orphan, "kept", why)
            os.rmdir(name, dir_fd=parent)
    except OSError as exc:
        return Cleaned(orphan, "kept", f"cannot remove it ({exc.strerror or exc})")
    return Cleaned(orphan, "removed")


def _recheck(orphan: Orphan, judge: _Judge, now: float) -> tuple[str, Identity]:
    """Why `orphan` must stay after all, or "" with its identity now (the re-check),
    looked up from its root as `_parent` does."""
    try:
        with _parent(orphan) as parent:
            return _recheck_at(parent, os.path.basename(orphan.seen.rel), orphan, judge, now)
    except OSError as exc:
        return f"it cannot be examined any more ({exc.strerror or exc})", _NONE


def _recheck_at(
    parent: int, name: str, orphan: Orphan, judge: _Judge, now: float
) -> tuple[str, Identity]:
    before = orphan.seen
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError as exc:
        return f"it cannot be examined any more ({exc.strerror})", _NONE
    empty = False
    if before.kind is Kind.DIR and stat.S_ISDIR(st.st_mode):
        try:
            empty = _is_empty(parent, name, st)
        except OSError as exc:
            return f"it cannot be listed any more ({exc.strerror})", _NONE
    seen = seen_from(before.path, before.rel, st, empty=empty)
    if (seen.inode, seen.kind) != (before.inode, before.kind):
        return "another entry is there now", _NONE
    if seen.nlink != before.nlink:
        return f"its hard links changed ({before.nlink} -> {seen.nlink})", _NONE
    if before.kind is not Kind.DIR and (seen.size, seen.mtime) != (before.size, before.mtime):
        return "it was modified since the scan", _NONE
    verdict = classify(seen, judge.listed, now, judge.settings, judge.exclude)
    return ("" if verdict.orphan else verdict.why), Identity.of(st)


def _is_empty(parent: int, name: str, st: os.stat_result) -> bool:
    """Whether directory `name` in `parent` (still `st`) holds no entry."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return False  # swapped meanwhile: the identity check says so
        return not os.listdir(fd)
    finally:
        os.close(fd)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NONE = Identity(0, 0, 0, 0, 0)
