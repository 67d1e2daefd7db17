"""Safe deletion of one torrent's files, in two phases.

`plan_deletion` only looks (lstat, stat, realpath) and decides, raising
`UnsafeDeletion` at the first doubt, so the executor can log exactly what will
happen before anything does. `carry_out` acts on a plan and re-checks every entry
immediately before touching it.

Strategy:
- Paths from rtorrent are claims to verify, never commands: names that are not
  UTF-8 come back with `?` in place of bytes, so a listed path may not exist or
  may name another file (RTORRENT.md). A file is deleted only if it is on disk
  with the listed size.
- Containment is decided on resolved paths, component by component, under the
  resolved allowed roots. Symlinks *above* the torrent's root (an allowed root
  that is a link, a symlinked download directory) are the administrator's layout:
  they are resolved once, and the result must still lie inside an allowed root.
  Symlinks *inside* the torrent (any directory between its root and a file, and
  the root itself when it is the torrent's own directory) are refused, because
  following one deletes data the torrent does not own. A file that is a symlink
  is removed as a link; its target is never touched. A mount point inside the
  torrent is refused for the same reason (a bind mount keeps st_dev).
- `carry_out` walks from the allowed root one component at a time with
  O_DIRECTORY|O_NOFOLLOW and unlinks relative to the parent's descriptor, so a
  directory swapped for a symlink after planning stops the walk instead of
  redirecting it. What remains is the instant between the final lstat and the
  unlink inside an already opened directory, which only someone with write
  access to the torrent's own directory can use.
- Only `os.unlink` and `os.rmdir`: never rmtree, never a followed link. A directory
  is removed only if it is empty, so anything a user added keeps it.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath
import re
import stat
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath
from typing import Protocol

from rtorrentd.deletion.mangling import check_lookalikes, disk_spellings
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.torrent import FileEntry

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_KIND_NAMES = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a fifo",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}

_BY_HAND = "delete this torrent's data by hand, or remove the torrent without its data"


class ListedFile(Protocol):
    """Anything with rtorrent's `f.path` and `f.size_bytes`, such as `FileEntry`."""

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...


class Fate(Enum):
    """What the plan does with one listed file."""

    UNLINK = "unlink"
    SHARED = "shared"  # another loaded torrent lists it: kept
    GONE = "gone"  # not on disk: deleted earlier (a crash before erase) or moved


@dataclass(frozen=True, slots=True)
class Location:
    """How `carry_out` reaches an entry: from an allowed root, one component at a time."""

    anchor: str  # the allowed root, resolved
    anchor_key: tuple[int, int]  # its (st_dev, st_ino) when planned
    parts: tuple[str, ...]  # single components below the anchor; the last is the entry

    @property
    def path(self) -> str:
        return posixpath.join(self.anchor, *self.parts)


@dataclass(frozen=True, slots=True)
class Identity:
    """What an entry was when planned; it must be the same when acted on.

    mtime catches a file replaced by one of the same size that reuses the freed
    inode number; ctime would not do, as unlinking a hard link changes it.
    """

    dev: int
    ino: int
    kind: int  # stat.S_IFMT
    size: int  # lstat size: for a symlink, the length of its target text
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        kind = stat.S_IFMT(st.st_mode)
        return cls(st.st_dev, st.st_ino, kind, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """The plan for one listed file; `reason` is for the log."""

    listed: str  # the torrent's root joined with f.path, as rtorrent names it
    location: Location
    fate: Fate
    identity: Identity | None  # None when gone
    freed: int
    reason: str

    @property
    def path(self) -> str:
        return self.location.path


@dataclass(frozen=True, slots=True)
class PlannedDir:
    """A directory of the torrent to remove if it is empty once the files are gone."""

    location: Location
    key: tuple[int, int]  # (st_dev, st_ino): a directory's size changes as it empties

    @property
    def path(self) -> str:
        return self.location.path


@dataclass(frozen=True, slots=True)
class Deletion:
    """What deleting one torrent's data will do; made by `plan_deletion`."""

    root: str  # the torrent's root, resolved
    files: tuple[PlannedFile, ...]  # one per distinct listed path, in listed order
    prune: tuple[PlannedDir, ...]  # deepest first
    freed_bytes: int

    @property
    def to_unlink(self) -> tuple[str, ...]:
        return self._paths(Fate.UNLINK)

    @property
    def kept_shared(self) -> tuple[str, ...]:
        return self._paths(Fate.SHARED)

    @property
    def already_gone(self) -> tuple[str, ...]:
        return self._paths(Fate.GONE)

    @property
    def prune_dirs(self) -> tuple[str, ...]:
        return tuple(d.path for d in self.prune)

    @property
    def reasons(self) -> tuple[tuple[str, str], ...]:
        return tuple((f.path, f.reason) for f in self.files)

    def _paths(self, fate: Fate) -> tuple[str, ...]:
        return tuple(f.path for f in self.files if f.fate is fate)


@dataclass(frozen=True, slots=True)
class Note:
    """A path left alone, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `carry_out` did. Erase the torrent only if `complete`; else retry later."""

    deleted: tuple[str, ...]
    already_gone: tuple[str, ...]
    skipped: tuple[Note, ...]
    removed_dirs: tuple[str, ...]
    skipped_dirs: tuple[Note, ...]
    freed_bytes: int

    @property
    def complete(self) -> bool:
        return not self.skipped


@dataclass(frozen=True, slots=True)
class _Anchor:
    path: str
    key: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Probe:
    entry: FileEntry
    listed: str
    location: Location
    lstat: os.stat_result | None  # None: not on disk


def _refuse(path: str, why: str, advice: str) -> UnsafeDeletion:
    return UnsafeDeletion(f"refusing to delete {path!r}: {why}; {advice}")


# --- plan -------------------------------------------------------------------------


def plan_deletion(
    root: str,
    files: Sequence[ListedFile],
    allowed_roots: Sequence[str],
    shared: Collection[str],
    *,
    multi_file: bool,
) -> Deletion:
    """Decide, without changing anything, how to delete one torrent's files.

    `root` is `d.directory`; `files` are its `f.path`/`f.size_bytes`; `shared`
    holds the absolute paths that other loaded torrents list; `multi_file` is
    `d.is_multi_file` (only then is `root` the torrent's own directory, which may
    be removed once empty). Raises `UnsafeDeletion` on any doubt.
    """
    try:
        return _plan(root, files, allowed_roots, shared, multi_file=multi_file)
    except OSError as exc:
        # Anything the checks did not foresee (a race, an I/O error) is a doubt too.
        path = exc.filename if isinstance(exc.filename, str) else root
        raise _refuse(path, f"it cannot be examined ({exc})", "retry later, then check it") from exc


def _plan(
    root: str,
    files: Sequence[ListedFile],
    allowed_roots: Sequence[str],
    shared: Collection[str],
    *,
    multi_file: bool,
) -> Deletion:
    anchors = _resolve_allowed_roots(allowed_roots)
    others = _normalise_shared(shared)
    listed_root = _check_root(root)
    real_root = os.path.realpath(listed_root)
    anchor = _anchor_for(real_root, anchors, listed_root)
    entries = _dedupe(files)
    check_lookalikes(listed_root, entries)
    root_exists = _check_root_on_disk(listed_root, real_root, multi_file=multi_file)
    below = PurePosixPath(real_root).parts[len(PurePosixPath(anchor.path).parts) :]
    base = Location(anchor.path, anchor.key, below)
    _check_no_mounts(real_root, entries, anchors, include_root=multi_file)
    probes = [_probe(e, listed_root, base, root_exists=root_exists) for e in entries]
    planned = _decide(probes, _find_sharers(probes, others))
    kept = [p for p, f in zip(probes, planned, strict=True) if f.fate is Fate.SHARED]
    prune = _prunable(probes, kept, base, anchors, prune_root=multi_file and root_exists)
    return Deletion(real_root, planned, prune, sum(f.freed for f in planned))


def _resolve_allowed_roots(allowed_roots: Sequence[str]) -> tuple[_Anchor, ...]:
    if isinstance(allowed_roots, str):
        raise TypeError("allowed_roots must be a sequence of paths, not one string")
    if not allowed_roots:
        raise _refuse("", "no allowed roots are configured", "set safety.allowed_roots")
    return tuple(_resolve_allowed_root(raw) for raw in allowed_roots)


def _resolve_allowed_root(raw: str) -> _Anchor:
    advice = "fix safety.allowed_roots (mount the disk, or remove the entry)"
    if not isinstance(raw, str) or not raw.startswith("/") or "\0" in raw:
        raise _refuse(str(raw), "an allowed root must be an absolute path", advice)
    try:
        real = os.path.realpath(raw, strict=True)
        st = os.stat(real)
    except FileNotFoundError as exc:
        raise _refuse(raw, "this allowed root does not exist", advice) from exc
    except OSError as exc:
        raise _refuse(
            raw, f"this allowed root cannot be resolved ({exc.strerror})", advice
        ) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(raw, "this allowed root is not a directory", advice)
    if real == "/":
        # Config refuses "/" too; a root that resolves to it would contain everything.
        raise _refuse(raw, "this allowed root is /, so nothing would be protected", advice)
    return _Anchor(real, (st.st_dev, st.st_ino))


def _normalise_shared(shared: Collection[str]) -> frozenset[str]:
    if isinstance(shared, str):
        raise TypeError("shared must be a collection of paths, not one string")
    for path in shared:
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
            why = "another torrent lists a path that is not absolute, so sharing cannot be checked"
            raise _refuse(str(path), why, "report this; rtorrentd builds these paths itself")
    return frozenset(_normalise(path) for path in shared)


def _normalise(path: str) -> str:
    """Drop empty and "." components; keep "..", which only the kernel can resolve.

    normpath would turn "/x/link/../tv" into "/x/tv", but after a symlink ".." is
    the link target's parent, and rtorrent keeps d.directory as it was set.
    """
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def _check_root(root: str) -> str:
    advice = "check the torrent's d.directory in rtorrent"
    if not isinstance(root, str) or not root.startswith("/") or "\0" in root:
        raise _refuse(str(root), "the torrent's directory is not an absolute path", advice)
    if ".." in root.split("/"):
        # ".." before a symlink means something else on disk than on paper.
        raise _refuse(root, "the torrent's directory contains '..'", advice)
    return _normalise(root)


def _anchor_for(real_root: str, anchors: Sequence[_Anchor], listed_root: str) -> _Anchor:
    inside = [a for a in anchors if _within(real_root, a.path)]
    if not inside:
        roots = ", ".join(a.path for a in anchors)
        why = f"it resolves to {real_root!r}, which is outside every allowed root ({roots})"
        raise _refuse(listed_root, why, "add its download directory to safety.allowed_roots")
    # The deepest one: a nested allowed root may be a separate filesystem.
    return max(inside, key=lambda a: len(PurePosixPath(a.path).parts))


def _within(path: str, base: str) -> bool:
    """Compare components, not text: /data/dl2 is not inside /data/dl."""
    base_parts = PurePosixPath(base).parts
    return PurePosixPath(path).parts[: len(base_parts)] == base_parts


def _dedupe(files: Sequence[ListedFile]) -> tuple[FileEntry, ...]:
    if not files:
        raise _refuse("", "rtorrent listed no files for this torrent", _BY_HAND)
    sizes: dict[str, int] = {}
    for entry in files:
        _check_entry(entry)
        if sizes.setdefault(entry.path, entry.size) != entry.size:
            raise _refuse(entry.path, "it is listed twice with different sizes", _BY_HAND)
    return tuple(FileEntry(path, size) for path, size in sizes.items())


def _check_entry(entry: ListedFile) -> None:
    why = _relative_path_problem(entry.path)
    if why is None and (isinstance(entry.size, bool) or not isinstance(entry.size, int)):
        why = f"its size {entry.size!r} is not an integer"
    elif why is None and entry.size < 0:
        why = f"its size {entry.size} is negative"
    if why is not None:
        raise _refuse(str(entry.path), why, _BY_HAND)


def _relative_path_problem(rel: object) -> str | None:
    if not isinstance(rel, str) or not rel:
        return "the listed path is empty or not text"
    if "\0" in rel:
        return "the listed path contains a NUL byte"
    if rel.startswith("/"):
        return "the listed path is absolute; rtorrent lists paths relative to the torrent"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "the listed path is not normalised (an empty, '.' or '..' component)"
    return None


def _check_root_on_disk(listed_root: str, real_root: str, *, multi_file: bool) -> bool:
    """Whether the root exists; refuses a root that is not a plain directory."""
    advice = "check the torrent's d.directory, then " + _BY_HAND
    listed = _lstat(listed_root)
    if multi_file and listed is not None and stat.S_ISLNK(listed.st_mode):
        why = f"the torrent's own directory is a symlink to {real_root!r}"
        raise _refuse(listed_root, why, "remove the link by hand (and its target if intended)")
    st = _lstat(real_root)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise _refuse(real_root, "the torrent's directory is not a directory", advice)
    return st is not None


def _check_no_mounts(
    real_root: str, entries: Sequence[FileEntry], anchors: Sequence[_Anchor], *, include_root: bool
) -> None:
    """Refuse a mount point inside the torrent, as a symlinked directory is refused.

    A bind mount of the same filesystem has the same st_dev, so only the mount
    table shows that its files are someone else's (a library bound into the
    torrent's directory to seed from). Allowed roots are the administrator's.
    """
    mounts = _mount_points() - {a.path for a in anchors}
    if not mounts:
        return
    for entry in entries:
        parts = entry.path.split("/")
        for depth in range(0 if include_root else 1, len(parts) + 1):
            path = posixpath.join(real_root, *parts[:depth])
            if path in mounts:
                why = "this is a mount point inside the torrent (a bind mount of other data?)"
                raise _refuse(path, why, "following it could delete data elsewhere; " + _BY_HAND)


def _mount_points() -> frozenset[str]:
    """Every mount point this process sees (Linux); none where that cannot be read."""
    try:
        with open("/proc/self/mountinfo", "rb") as table:
            lines = table.read().splitlines()
    except OSError:
        return frozenset()
    points = (line.split(b" ")[4] for line in lines if line.count(b" ") >= 4)
    return frozenset(os.fsdecode(_unescape_octal(p)) for p in points)


def _unescape_octal(field: bytes) -> bytes:
    # mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134.
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = f"it cannot be examined ({exc.strerror})"
        raise _refuse(path, why, "check its permissions and the filesystem") from exc


def _probe(entry: FileEntry, listed_root: str, root: Location, *, root_exists: bool) -> _Probe:
    """Check one listed file against the disk; refuses anything doubtful."""
    parts = tuple(entry.path.split("/"))
    location = Location(root.anchor, root.anchor_key, root.parts + parts)
    listed = posixpath.join(listed_root, entry.path)
    st = _walk(root.path, parts) if root_exists else None
    if st is None:
        _check_not_mangled(listed, entry.path if root_exists else listed)
    else:
        _check_file(location.path, st, entry, root.anchor_key[0], root.anchor)
    return _Probe(entry, listed, location, st)


def _walk(real_root: str, parts: tuple[str, ...]) -> os.stat_result | None:
    """lstat each directory below the root, then the file; None if something is missing."""
    path = real_root
    for name in parts[:-1]:
        path = posixpath.join(path, name)
        st = _lstat(path)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            why = f"this directory inside the torrent is a symlink to {os.readlink(path)!r}"
            raise _refuse(path, why, "following it could delete data elsewhere; " + _BY_HAND)
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(
                path, "the torrent has files below this, but it is no directory", _BY_HAND
            )
    return _lstat(posixpath.join(path, parts[-1]))


def _check_not_mangled(listed: str, unseen: str) -> None:
    if "?" in unseen:
        why = (
            "it is not on disk and its name contains '?': rtorrent shows bytes of "
            "non-UTF-8 names as '?', so the real file is probably there under other bytes"
        )
        raise _refuse(listed, why, "name mangled by rtorrent; " + _BY_HAND)


def _check_file(path: str, st: os.stat_result, entry: FileEntry, dev: int, anchor: str) -> None:
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFLNK:
        _check_symlink(path, entry)
    elif kind != stat.S_IFREG:
        why = f"it is {_KIND_NAMES.get(kind, 'a special file')}, not a regular file"
        raise _refuse(path, why, _BY_HAND)
    elif st.st_size != entry.size:
        raise _wrong_size(path, st.st_size, entry.size)
    if st.st_dev != dev:
        why = f"it is on another filesystem than its allowed root {anchor!r}"
        raise _refuse(path, why, "add that filesystem's download directory as an allowed root")


def _check_symlink(path: str, entry: FileEntry) -> None:
    """A symlinked file is unlinked as a link; its target must still look like the file.

    A dangling link is refused: nothing shows that it belongs to the torrent.
    """
    target = os.readlink(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        why = f"it is a symlink to {target!r}, which cannot be reached ({exc.strerror})"
        raise _refuse(path, why, "remove the link by hand if it is not wanted") from exc
    if not stat.S_ISREG(st.st_mode):
        why = f"it is a symlink to {target!r}, which is not a regular file"
        raise _refuse(path, why, _BY_HAND)
    if st.st_size != entry.size:
        raise _wrong_size(path, st.st_size, entry.size)


def _wrong_size(path: str, actual: int, listed: int) -> UnsafeDeletion:
    why = f"it is {actual} bytes but rtorrent lists {listed}, so it may be another file"
    return _refuse(path, why, "check it, then " + _BY_HAND)


def _find_sharers(probes: Sequence[_Probe], others: frozenset[str]) -> dict[str, str]:
    """Map our resolved paths to another torrent's path for the same directory entry.

    Besides the same text (as listed, or resolved), another torrent may reach the
    file through a symlinked directory or a symlink file (cross-seed's link mode),
    a bind mount, or a name rtorrent mangled ('?'): its path then stats to our
    inode. A hard link has our inode but is another entry: unlinking ours leaves
    it intact, so it does not count.
    """
    found: dict[str, str] = {}
    ours: dict[tuple[int, int], list[str]] = {}  # inode, links followed -> our paths
    for probe in probes:
        path = probe.location.path
        found.update((path, name) for name in (path, probe.listed) if name in others)
        if probe.lstat is not None:
            st = os.stat(path)  # follows a symlinked file, whose target _check_symlink saw
            ours.setdefault((st.st_dev, st.st_ino), []).append(path)
    listdir = functools.cache(_listdir)
    for other in sorted(others):  # one stat per path: the price of catching links to ours
        for spelling in disk_spellings(other, listdir) if "?" in other else (other,):
            key = _followed_key(spelling)
            for path in ours.get(key, ()) if key is not None else ():
                if path not in found and _same_entry(spelling, path, listdir):
                    found[path] = other
    return found


def _listdir(path: str) -> frozenset[bytes]:
    try:
        return frozenset(os.listdir(os.fsencode(path)))
    except OSError:
        return frozenset()


def _same_entry(other: str, ours: str, listdir: Callable[[str], frozenset[bytes]]) -> bool:
    """Whether `other`, which stats to our inode, names our entry, not a hard link.

    In doubt it does: keeping a file is the safe side.
    """
    real_other, real_ours = os.path.realpath(other), os.path.realpath(ours)
    if real_other == real_ours:
        return True
    other_dir, other_name = posixpath.split(real_other)
    our_dir, our_name = posixpath.split(real_ours)
    other_key = _followed_key(other_dir)
    if other_key is not None and other_key != _followed_key(our_dir):
        return False  # a hard link in another directory
    # The same directory (a bind mount shows it under another path): the same name
    # is the same entry, and so is a name the directory does not hold as such (a
    # case-insensitive filesystem's spelling of ours); another name there is a link.
    return other_name == our_name or os.fsencode(other_name) not in listdir(other_dir)


def _followed_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _decide(probes: Sequence[_Probe], sharers: dict[str, str]) -> tuple[PlannedFile, ...]:
    freed = _freed_by_unlinking([p for p in probes if _unlinks(p, sharers)])
    return tuple(_plan_file(p, sharers.get(p.location.path), freed) for p in probes)


def _unlinks(probe: _Probe, sharers: dict[str, str]) -> bool:
    return probe.lstat is not None and probe.location.path not in sharers


def _freed_by_unlinking(probes: Sequence[_Probe]) -> dict[str, int]:
    """Bytes each unlink frees: an inode's size once, if all its links are being unlinked."""
    groups: dict[tuple[int, int], list[_Probe]] = {}
    for probe in probes:
        st = probe.lstat
        if st is not None and stat.S_ISREG(st.st_mode):
            groups.setdefault((st.st_dev, st.st_ino), []).append(probe)
    freed = {p.location.path: 0 for p in probes}
    for group in groups.values():
        st = group[0].lstat
        if st is not None and st.st_nlink <= len(group):
            freed[group[-1].location.path] = st.st_size
    return freed


def _plan_file(probe: _Probe, sharer: str | None, freed: dict[str, int]) -> PlannedFile:
    st = probe.lstat
    if st is None:
        fate, reason, nbytes = Fate.GONE, "not on disk: already deleted, or moved away", 0
    elif sharer is not None:
        fate, reason, nbytes = Fate.SHARED, f"kept: another torrent lists it as {sharer!r}", 0
    else:
        nbytes = freed[probe.location.path]
        fate, reason = Fate.UNLINK, _unlink_reason(probe.location.path, st, nbytes)
    identity = None if st is None else Identity.of(st)
    return PlannedFile(probe.listed, probe.location, fate, identity, nbytes, reason)


def _unlink_reason(path: str, st: os.stat_result, freed: int) -> str:
    if stat.S_ISLNK(st.st_mode):
        return f"symlink to {os.readlink(path)!r}: the link goes, its target stays; frees 0"
    if freed:
        return f"regular file, {st.st_size} bytes, no other link: frees {freed}"
    return f"regular file with {st.st_nlink} links: its data stays under another name; frees 0"


def _prunable(
    probes: Sequence[_Probe],
    kept: Sequence[_Probe],
    root: Location,
    anchors: Sequence[_Anchor],
    *,
    prune_root: bool,
) -> tuple[PlannedDir, ...]:
    """Directories between the root and the files, plus the root for a multi-file torrent.

    Never an allowed root, never above the root, never one that holds a kept file.
    """
    blocked = {d for p in kept for d in _rel_dirs(p.entry.path)}
    wanted = {d for p in probes for d in _rel_dirs(p.entry.path)[1:]}
    if prune_root:
        wanted.add(())
    never = {a.path for a in anchors}
    found = (_planned_dir(root, rel) for rel in wanted - blocked)
    dirs = [d for d in found if d is not None and d.path not in never]
    return tuple(sorted(dirs, key=lambda d: (-len(d.location.parts), d.path)))


def _rel_dirs(rel: str) -> list[tuple[str, ...]]:
    """The directories holding `rel`, from the root (`()`) down to its parent."""
    parts = tuple(rel.split("/"))
    return [parts[:depth] for depth in range(len(parts))]


def _planned_dir(root: Location, rel: tuple[str, ...]) -> PlannedDir | None:
    location = Location(root.anchor, root.anchor_key, root.parts + rel)
    st = _lstat(location.path)
    if st is None or not stat.S_ISDIR(st.st_mode):  # lstat: a symlink is not S_ISDIR
        return None
    return PlannedDir(location, (st.st_dev, st.st_ino))


# --- carry out ---------------------------------------------------------------------


class _Gone(Exception):
    """The entry is not there any more: nothing to do."""


class _Skip(Exception):
    """The entry is not what was planned, or cannot be removed: leave it, say why."""


def carry_out(deletion: Deletion) -> Outcome:
    """Unlink the planned files, then remove the planned directories that are empty.

    Each entry is re-checked just before it is touched and left alone (listed in
    `skipped`) if it changed; one that vanished counts as already gone, so running
    a plan twice, or after a crash, is harmless.
    """
    deleted: list[str] = []
    gone: list[str] = []
    skipped: list[Note] = []
    freed = 0
    for planned in deletion.files:
        if planned.fate is not Fate.UNLINK:
            continue
        try:
            freed += _unlink(planned)
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


def _unlink(planned: PlannedFile) -> int:
    """Unlink one file if it is still the planned entry; the bytes that freed."""
    name = planned.location.parts[-1]
    with _parent_of(planned.location) as fd:
        st = _lstat_at(name, fd)
        if planned.identity is None or Identity.of(st) != planned.identity:
            raise _Skip("it changed since it was planned (another file or type): left alone")
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError as exc:
            raise _Gone from exc
        except OSError as exc:
            raise _Skip(f"unlink failed ({exc.strerror})") from exc
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
