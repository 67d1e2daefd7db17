"""Which loaded torrents could list a file of the torrent being deleted: only those
are read (`f.multicall`) and checked by `sharers.find_sharers`.

A torrent T can list one of our files only if
- T's data path and ours overlap: one is the other, or inside it. Overlap is
  decided on identities (device, inode) of every directory on the way, each
  reached by the kernel (`stat` follows links, resolves "..", and a bind mount
  reaches the same inode), on the spelling its directory stores (`spelling`: a
  case-insensitive filesystem may number each spelling apart); or
- T's data holds a symlink (a symlinked file or directory inside T's data, as
  cross-seed's link mode makes), which may point anywhere; or
- T's data path cannot be examined at all (missing, a name rtorrent mangled, no
  permission, a relative `d.directory`): then nothing rules it out.
libtorrent refuses "." and ".." in a torrent's file paths, so a listed file is
always inside its torrent's data path. Hard links are other directory entries:
unlinking ours leaves them intact, so they never need protecting (planning counts
what an unlink frees).

Every other torrent is read when our own data path cannot be examined.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from rtorrentd.deletion.spelling import Spellings, Unspellable, identity

Inode = tuple[int, int]
# Directories changed this recently may change again within their timestamp's
# granularity (2 s on FAT) without a visible change: their scan is not cached.
_RACY_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Holder:
    """One loaded torrent as the sharing check sees it; `source` is "" for the
    rtorrent being acted on, else the other instance's URL."""

    source: str
    hash: str
    name: str
    directory: str
    path: str

    @property
    def key(self) -> tuple[str, str]:
        """Identifies the torrent across instances."""
        return (self.source, self.hash)


def _parts(path: str) -> list[str]:
    """The components of `path` as written, ".." included ("" and "." dropped)."""
    return [p for p in path.split("/") if p not in ("", ".")]


def _normalised(path: str) -> str:
    """`path` (absolute) without empty and "." components, ".." kept as written."""
    return "/" + "/".join(_parts(path))


def _split(path: str) -> tuple[str, str] | None:
    """The directory (`_normalised`) and the last component of `path` (absolute);
    None for "/" itself."""
    if "//" in path or "/." in path or path.endswith("/"):
        parts = _parts(path)
        return ("/" + "/".join(parts[:-1]), parts[-1]) if parts else None
    # No empty, "." or ".." component: as normalised already (the usual case).
    directory, _, name = path.rpartition("/")
    return directory or "/", name


def _consistent(holder: Holder) -> bool:
    """Whether the files (`directory` + `f.path`) lie at or under the data path, as
    rtorrent keeps them; a torrent whose directory was changed under a stale
    `d.base_path`, or is not absolute, is checked whatever its data path."""
    directory, path = holder.directory, holder.path
    if not (directory.startswith("/") and path.startswith("/")):
        return False
    if path.startswith(directory.rstrip("/") + "/"):
        return True  # the usual case, without splitting 10,000 paths
    parts = [p for p in directory.split("/") if p not in ("", ".")]
    data = [p for p in path.split("/") if p not in ("", ".")]
    return data[: len(parts)] == parts


@dataclass(frozen=True, slots=True)
class _DirScan:
    mtime_ns: int
    ctime_ns: int
    has_link: bool
    subdirs: tuple[str, ...]


class LinkScanner:
    """Whether a directory tree holds a symlink anywhere, cached per directory by
    (device, inode) and validated by its mtime and ctime: creating, removing or
    renaming an entry changes its directory's mtime, so an unchanged directory is
    not listed again. Kept across polls; entries not visited in a walk are dropped.
    The instances of a daemon share one, each from its own worker threads: rounds
    may overlap, and the cache is pruned when the last of them ends.
    """

    def __init__(self) -> None:
        self._cache: dict[Inode, _DirScan] = {}
        self._seen: set[Inode] = set()
        self._rounds = 0
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Start a round of walks; entries not visited since are dropped by `end`."""
        with self._lock:
            if self._rounds == 0:
                self._seen = set()
            self._rounds += 1

    def end(self) -> None:
        """Forget directories no walk of the rounds that overlapped this one visited."""
        with self._lock:
            self._rounds -= 1
            if self._rounds == 0:
                self._cache = {k: v for k, v in self._cache.items() if k in self._seen}

    def holds_link(self, path: str, lstat: os.stat_result | None = None) -> bool | None:
        """Whether `path` is a symlink or a directory tree holding one (links are
        not followed); None when it cannot be examined. `lstat`: `path`'s, just taken."""
        try:
            st = os.lstat(path) if lstat is None else lstat
        except (OSError, ValueError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return True
        if not stat.S_ISDIR(st.st_mode):
            return False
        return self._walk(path, st)

    def _walk(self, top: str, top_st: os.stat_result) -> bool | None:
        pending = [(top, top_st)]
        while pending:
            path, st = pending.pop()
            scan = self._scan(path, st)
            if scan is None:
                return None
            if scan.has_link:
                return True
            for name in scan.subdirs:
                child = os.path.join(path, name)
                try:
                    child_st = os.lstat(child)
                except OSError:
                    return None
                if not stat.S_ISDIR(child_st.st_mode):  # swapped meanwhile
                    return None if not stat.S_ISLNK(child_st.st_mode) else True
                pending.append((child, child_st))
        return False

    def _scan(self, path: str, st: os.stat_result) -> _DirScan | None:
        key = (st.st_dev, st.st_ino)
        with self._lock:
            self._seen.add(key)
            cached = self._cache.get(key)
        if cached and (cached.mtime_ns, cached.ctime_ns) == (st.st_mtime_ns, st.st_ctime_ns):
            return cached
        started = time.time()
        try:
            with os.scandir(path) as entries:
                kinds = [(e.name, e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in entries]
        except OSError:
            return None
        scan = _DirScan(
            st.st_mtime_ns,
            st.st_ctime_ns,
            any(link for _, link, _ in kinds),
            tuple(name for name, link, is_dir in kinds if is_dir and not link),
        )
        # Only the mtime can hide a change: a later change of entries moves it, unless
        # it falls within the same tick of the timestamp, which this excludes.
        with self._lock:
            if st.st_mtime_ns / 1e9 < started - _RACY_SECONDS:
                self._cache[key] = scan
            else:
                self._cache.pop(key, None)
        return scan


Chain = tuple[Inode, ...]
# A path's identities so far and its spelling so far (`_chain`); None: unexaminable.
_Known = tuple[Chain, str] | None


class SharingIndex:
    """The loaded torrents of one poll, indexed by the identities on their data paths.

    Built once per poll before the first deletion (one `stat` per distinct
    directory, one `lstat` and one cached walk per torrent's data); `candidates`
    is then a few dictionary look-ups per deletion. A torrent is found by its data
    path's own identity, and by every directory on the way there: the chain of
    its directory, which the torrents of one directory share.
    """

    def __init__(self, holders: Iterable[Holder], scanner: LinkScanner) -> None:
        self._holders: dict[tuple[str, str], Holder] = {}
        self._always: set[tuple[str, str]] = set()
        self._by_own: dict[Inode, set[tuple[str, str]]] = {}
        self._in_dir: dict[Chain, set[tuple[str, str]]] = {}  # a directory's chain -> torrents
        self._dirs_at: dict[Inode, set[Chain]] = {}  # identity -> chains holding it
        self._known: dict[str, _Known] = {}  # a directory as written -> its chain
        self._spellings = Spellings()
        self._scanner = scanner
        scanner.begin()
        try:
            for holder in holders:
                self.add(holder)
        finally:
            scanner.end()
        # Identities are cached while building only: later look-ups stat afresh.
        self._known, self._spellings = {}, Spellings()

    def __len__(self) -> int:
        return len(self._holders)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._holders

    def add(self, holder: Holder) -> None:
        """Index one torrent (also one added since the index was built)."""
        key = holder.key
        self._holders[key] = holder
        placed = self._place(holder) if _consistent(holder) else None
        if placed is None:
            self._always.add(key)  # cannot be ruled out
            return
        directory, own = placed
        at = self._by_own.get(own)
        if at is None:
            self._by_own[own] = {key}
        else:
            at.add(key)
        members = self._in_dir.get(directory)
        if members is None:
            members = self._in_dir[directory] = set()
            for inode in directory:
                self._dirs_at.setdefault(inode, set()).add(directory)
        members.add(key)

    def forget(self, key: tuple[str, str]) -> None:
        """Drop a torrent erased meanwhile (by us): its files protect nothing now."""
        self._holders.pop(key, None)
        self._always.discard(key)

    def holds_link(self, path: str) -> bool | None:
        """Whether the data at `path` is or holds a symlink (None: unknown)."""
        return self._scanner.holds_link(path)

    def candidates(
        self, paths: Iterable[str], exclude: tuple[str, str], spellings: Spellings | None = None
    ) -> list[Holder]:
        """Every indexed torrent that could list a file at or under any of `paths`
        (our data path, and the resolved targets of our symlinked files), except
        `exclude` (the torrent being deleted); all of them when one of `paths`
        cannot be examined. Our side is stat'ed afresh: it may have changed since
        the index was built. `spellings`: the listings of the deletion's planning
        round, which then reads them once (by default a round of its own)."""
        found = set(self._always)
        for path in paths:
            absolute = path.startswith("/")
            known = _chain(_normalised(path), spellings or Spellings(), {}) if absolute else None
            chain = () if known is None else known[0]
            if not chain:
                found = set(self._holders)
                break
            for directory in self._dirs_at.get(chain[-1], ()):  # inside ours
                found.update(self._in_dir[directory])
            for key in chain:  # at ours, or ours is inside theirs
                found.update(self._by_own.get(key, ()))
        found.discard(exclude)
        return [self._holders[k] for k in sorted(found) if k in self._holders]

    def _place(self, holder: Holder) -> tuple[Chain, Inode] | None:
        """The chain of the torrent's directory and its data path's identity; None
        when it cannot be examined, or is or holds a symlink (`LinkScanner`)."""
        path = holder.path
        split = _split(path) if path.startswith("/") else None
        if split is None:
            return None
        known = _chain(split[0], self._spellings, self._known)
        if known is None:
            return None
        directory, spelled = known
        try:
            own_spelled = self._spellings.joined(spelled, split[1])
        except Unspellable:
            return None
        if own_spelled != path:  # another spelling, or not as normalised: stat apart
            own = identity(own_spelled)
            if own is None or self._scanner.holds_link(path) is not False:
                return None
            return directory, own
        # The path as stored: one lstat answers both questions (a final component
        # that is no symlink is what stat reaches; a symlink goes to `_always`).
        try:
            st = os.lstat(path)
        except (OSError, ValueError):
            return None
        if self._scanner.holds_link(path, st) is not False:
            return None
        return directory, (st.st_dev, st.st_ino)


def _chain(written: str, spellings: Spellings, known: dict[str, _Known]) -> _Known:
    """The identity of each directory on the way to `written` (`_normalised`) from
    "/" (links followed, ".." resolved by the kernel), each on its stored spelling
    (`spelling`), and the spelling of the last; None when one cannot be reached, or
    spelled. `known` caches them by the path as written."""
    if written in known:
        return known[written]
    found: tuple[Chain, str] = ((), "/")
    parts = _parts(written)
    for depth in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:depth])
        if prefix not in known:
            known[prefix] = _step(found, parts[depth - 1], spellings)
        below = known[prefix]
        if below is None:
            known[written] = None
            return None
        found = below
    known[written] = found
    return found


def _step(above: tuple[Chain, str], name: str, spellings: Spellings) -> _Known:
    chain, spelled = above
    try:
        spelled = spellings.joined(spelled, name)
    except Unspellable:
        return None
    key = identity(spelled)
    return None if key is None else ((*chain, key), spelled)
