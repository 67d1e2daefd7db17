"""What every loaded torrent lists, for the orphan scan: every instance's torrents
and their files, as `engine.orphans.Listed` (paths and identities).

Read once per scan from each instance (the rtorrent acted on, every
`[safety] other_rtorrents`, and every other instance of the daemon): one
`d.multicall2` of the fields below, then `f.multicall` of every torrent in
`system.multicall` batches, turned into paths and stat'ed batch by batch (memory
holds the listed set, never all the replies). Before moving anything, `refresh`
asks each instance for the torrents loaded since (`d.multicall.filtered` on
`d.load_date`, as `neighbours` does before each deletion) and adds theirs.

Whatever makes the listing untrustworthy refuses the whole scan
(`OrphanScanRefused`): an instance that cannot be read, a torrent being
hash-checked or moved (its data path is not where its directory says), an
incomplete torrent whose files are not all created yet, a complete torrent one of
whose files is missing (its data moved elsewhere, or was deleted), a started
torrent whose data is missing altogether (an unmounted disk?).

rtorrent shows names lossily (`?` for bytes that are not UTF-8: RTORRENT.md). A
listed path that may stand for several names protects every name on disk that
rtorrent could show so (`protocol.names.may_show_as`): a lookalike is kept, never
moved.

On a case-insensitive filesystem (exFAT through FUSE) rtorrent finds `Album/a.bin`
stored as `ALBUM/a.bin`, and each spelling shows its own inode number: a listed
path is also added as its directories store it (`spelling.Spellings`), with that
spelling's identity, or the scan is refused when the spelling cannot be told.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import cast

import anyio.to_thread

from rtorrentd.deletion.spelling import Spellings, Unspellable, exact_lookups
from rtorrentd.engine.orphans import Inode, Listed, TorrentState, busy_reason, normalise
from rtorrentd.errors import OrphanScanRefused, RpcError, TransportError
from rtorrentd.protocol.names import exact_bytes, is_exact, may_show_as
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import FileEntry

COMMANDS = (
    "d.hash=",
    "d.name=",
    "d.directory=",
    "d.base_path=",
    "d.is_multi_file=",
    "d.complete=",
    "d.state=",
    "d.hashing=",
    "d.is_hash_checked=",
    "d.tied_to_file=",
)
NAME_COLUMNS = ("d.name=", "d.directory=", "d.base_path=", "d.tied_to_file=")
FILES_BATCH = 100  # torrents per f.multicall round: rtorrent answers each under its lock
LOOKALIKES = 64  # names one lossy listed path may protect before the scan refuses
# rtorrent's d.load_date and system.time come from its cached clock, which may lag.
_CLOCK_MARGIN = 2


@dataclass(frozen=True, slots=True)
class Source:
    """One rtorrent whose torrents count: `label` names it in reports."""

    label: str
    url: str
    client: RtorrentClient


@dataclass(slots=True)
class Listing:
    """What every instance lists, for one scan."""

    listed: Listed
    sources: tuple[Source, ...]
    torrents: int = 0
    since: dict[str, int] = field(default_factory=dict)
    known: set[tuple[str, str]] = field(default_factory=set)
    sessions: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)

    @property
    def labels(self) -> tuple[str, ...]:
        """Every instance read, as reports name them."""
        return tuple(source.label for source in self.sources)


# One watch of an inotify descriptor in /proc/PID/fdinfo (fs/notify/fdinfo.c): the
# inode in hex, and the kernel's dev_t (major << 20 | minor) in hex.
_INOTIFY_WATCH = re.compile(r"^inotify wd:\S+ ino:([0-9a-fA-F]+) sdev:([0-9a-fA-F]+)", re.MULTILINE)


def watched_directories(pids: Collection[int], proc: str = "/proc") -> frozenset[Inode]:
    """What the processes `pids` watch with inotify, as (device, inode): the
    directories rtorrent watches for new .torrent files (`directory.watch.added`).
    None where /proc does not show them (another user's process, another PID
    namespace)."""
    found: set[Inode] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"{proc}/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{proc}/{pid}/fd/{fd}") != "anon_inode:inotify":
                    continue
                with open(f"{proc}/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as info:
                    text = info.read()
            except OSError:
                continue
            for inode, device in _INOTIFY_WATCH.findall(text):
                dev = int(device, 16)
                found.add((os.makedev(dev >> 20, dev & 0xFFFFF), int(inode, 16)))
    return frozenset(found)


def _unreachable(source: Source, exc: Exception) -> OrphanScanRefused:
    return OrphanScanRefused(
        f"{source.label} cannot be read ({exc}), so which files its torrents use is unknown"
    )


async def read_listing(sources: Sequence[Source]) -> Listing:
    """Every instance's loaded torrents and their files; refuses (`OrphanScanRefused`)
    when any instance cannot be read or any torrent's files cannot be told."""
    listing = Listing(Listed(), tuple(sources))
    for source in sources:
        try:
            clock = await source.client.call("system.time")
            pid = await source.client.call("system.pid")
            session = await source.client.session_path()
            rows = await source.client.rows(COMMANDS, names=NAME_COLUMNS)
        except (TransportError, RpcError) as exc:
            raise _unreachable(source, exc) from exc
        listing.since[source.url] = (clock if isinstance(clock, int) else 0) - _CLOCK_MARGIN
        if isinstance(pid, int):
            listing.pids.add(pid)
        if session:
            listing.sessions.append(session)
        await _add(listing, source, rows)
    return listing


async def refresh(listing: Listing) -> int:
    """Add the torrents every instance loaded since the listing was read (or the
    last refresh); returns how many. Refuses as `read_listing` does."""
    added = 0
    for source in listing.sources:
        try:
            since = listing.since[source.url]
            rows = await source.client.rows(COMMANDS, names=NAME_COLUMNS, since=since)
        except (TransportError, RpcError) as exc:
            raise _unreachable(source, exc) from exc
        new = [row for row in rows if (source.url, row[0]) not in listing.known]
        added += len(new)
        await _add(listing, source, new)
    return added


_TYPES = (str, str, str, str, int, int, int, int, int, str)


def _state(source: Source, row: Sequence[object]) -> tuple[TorrentState, str]:
    """One row of `COMMANDS`; refuses a row of other types (nothing is guessed)."""
    if len(row) != len(_TYPES) or not all(
        isinstance(v, t) and not isinstance(v, bool) for v, t in zip(row, _TYPES, strict=True)
    ):
        raise OrphanScanRefused(f"{source.label} sent an unexpected row {row!r:.100}")
    hash_, name, directory, base, multi, complete, started, hashing, checked, tied = row
    state = TorrentState(
        source.label,
        str(hash_),
        str(name),
        str(directory),
        str(base),
        bool(multi),
        bool(complete),
        bool(started),
        int(cast(int, hashing)),
        int(cast(int, checked)),
    )
    return state, str(tied)


async def _add(listing: Listing, source: Source, rows: Sequence[Sequence[object]]) -> None:
    states = [_state(source, row) for row in rows]
    for state, _tied in states:
        reason = busy_reason(state)
        if reason:
            raise OrphanScanRefused(reason)
    for start in range(0, len(states), FILES_BATCH):
        batch = states[start : start + FILES_BATCH]
        try:
            files = await source.client.all_files([s.hash for s, _ in batch])
        except (TransportError, RpcError) as exc:
            raise _unreachable(source, exc) from exc
        index = functools.partial(_index, listing.listed, batch, files)
        await anyio.to_thread.run_sync(index, abandon_on_cancel=True)  # stats only
        listing.known.update((source.url, s.hash) for s, _ in batch)
        listing.torrents += len(batch)


def _index(
    listed: Listed,
    batch: Sequence[tuple[TorrentState, str]],
    files: dict[str, tuple[FileEntry, ...]],
) -> None:
    """Add a batch of torrents' files (paths, identities); refuse what cannot be told."""
    spellings = Stored()  # directory listings for this batch only (memory)
    for state, tied in batch:
        entries = files.get(state.hash)
        if entries is None:
            continue  # erased meanwhile: it lists nothing any more
        directory = normalise(state.directory)
        missing = [
            entry.path
            for entry in entries
            if not _add_path(listed, posixpath.join(directory, entry.path), spellings)
        ]
        who = f"{state.hash} ({state.name!r}) of {state.instance}"
        if missing and len(missing) == len(entries) and state.started:
            raise OrphanScanRefused(
                f"{who} is started but none of its files is on disk under {directory!r}: "
                "an unmounted disk?"
            )
        if missing and not state.complete:
            raise OrphanScanRefused(
                f"{who} is incomplete and its file {missing[0]!r} is not created yet"
            )
        if missing:
            # Its data is elsewhere: moved (stop, close, mv, then d.directory.set, as
            # ruTorrent's datadir does; a renamed directory keeps its files' old
            # ctime) or deleted by hand. Where it went cannot be told.
            raise OrphanScanRefused(
                f"{who} is complete but its file {missing[0]!r} is not on disk under "
                f"{directory!r}: its data moved (a move under way?) or was deleted; "
                "point the torrent at its data (d.directory.set), or remove the torrent"
            )
        if tied.startswith("/"):
            _add_path(listed, normalise(tied), spellings)


def _add_path(listed: Listed, path: str, spellings: Stored) -> bool:
    """Add one listed path (every name on disk it may stand for, when rtorrent
    showed it lossily); whether something is there."""
    if is_exact(path):  # "/" is no stand-in: exact as a whole is exact part by part
        return _add_exact(listed, path, spellings)
    found = False
    for name in _lookalikes(path):
        found = _add_exact(listed, name, spellings) or found
    listed.add_file(path)  # the shown form too: harmless, and it keeps its directories
    return found


def _add_exact(listed: Listed, path: str, spellings: Stored) -> bool:
    """Add `path` as written and, where a directory stores it otherwise (a
    case-insensitive filesystem), as stored; whether something is there."""
    found = _add_spelled(listed, path, count=True)
    try:
        stored = spellings.of(path)
    except Unspellable as exc:
        raise OrphanScanRefused(
            f"a loaded torrent lists {path!r}, which a case-insensitive filesystem holds "
            "under several spellings or none it lists: which entries are its files cannot "
            "be told; rename them apart"
        ) from exc
    if stored != path:
        found = _add_spelled(listed, stored, count=False) or found
    return found


@dataclass(slots=True)
class Stored:
    """Listed paths as their directories store them (`Spellings.canonical`), each
    directory worked out once for all its files."""

    spellings: Spellings = field(default_factory=Spellings)
    # A directory as written -> as stored, and whether its names are exact there.
    directories: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def of(self, path: str) -> str:
        """`path` (absolute, normalised) as stored; raises `Unspellable`."""
        parent, name = posixpath.split(path)
        known = self.directories.get(parent)
        if known is None:
            spelled = self.spellings.canonical(parent)
            known = self.directories[parent] = (spelled, exact_lookups(spelled))
        spelled, exact = known
        if exact:  # ext4, tmpfs: a name that exists is stored as written
            return path if spelled == parent else posixpath.join(spelled, name)
        return self.spellings.joined(spelled, name)


def _add_spelled(listed: Listed, path: str, *, count: bool) -> bool:
    for directory in listed.add_file(path, count=count):
        listed.add_inodes(_identities(directory))
    inodes = _identities(path)
    listed.add_inodes(inodes)
    return bool(inodes)


def _identities(path: str) -> list[Inode]:
    """The identities `path` reaches: the entry itself (lstat) and, for a link,
    what it points to (stat); none when nothing is there."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return []
    found = [(st.st_dev, st.st_ino)]
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
        except (OSError, ValueError):
            return found
        found.append((target.st_dev, target.st_ino))
    return found


def _lookalikes(path: str) -> list[str]:
    """Every existing path that rtorrent may show as `path` (component by component)."""
    found = [b"/"]
    for part in (p for p in path.split("/") if p not in ("", ".")):
        following: list[bytes] = []
        for parent in found:
            if is_exact(part):
                following.append(os.path.join(parent, exact_bytes(part)))
                continue
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            following += (os.path.join(parent, n) for n in names if may_show_as(n, part))
        if len(following) > LOOKALIKES:
            raise OrphanScanRefused(
                f"a loaded torrent lists {path!r}, which rtorrent shows alike for more than "
                f"{LOOKALIKES} names on disk; rename them"
            )
        found = following
    return [os.fsdecode(p) for p in found if os.path.lexists(p)]
