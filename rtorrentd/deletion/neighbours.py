"""The torrents that share the disk with the one being deleted: those of the
rtorrent we act on, of every other rtorrent named in `[safety] other_rtorrents`,
and of the other instances of the daemon whose data can share its filesystem.

Per poll, before its first deletion, the list of loaded torrents of our rtorrent
and of each of `other_rtorrents` is read once (one `d.multicall2` of the path
fields, after `system.time`) and indexed by `sharing.SharingIndex`. The other
instances of the daemon are not read: each published its list at its own last
poll (`peers`). Before each deletion (`shared_paths`):
- our rtorrent and `other_rtorrents` are asked for the torrents loaded since that
  snapshot (one `d.multicall.filtered` on `d.load_date`, answered from rtorrent's
  own scan): a torrent added meanwhile is indexed before its files could be missed.
  Once per deletion, for the plan it carries out (after `d.close`, just before the
  unlinks): the scan costs rtorrent ~40 ms at 10,000 torrents, with its lock held;
- the instances of the daemon whose data can be on the victim's filesystem
  (`peers.Peer.shares`) have their publication indexed (once per poll) and are
  asked the same, all at once, within `peers.PEER_TIMEOUT` together; one that is
  down, stale, or silent refuses the deletion (and the poll's further deletions on
  a filesystem it shares, without being asked again); the others are not asked;
- only the torrents that could list one of our files are read (`f.multicall`,
  cached for the poll), the others never cross the socket.
Another rtorrent that cannot be read refuses the deletion: nothing is guessed.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio.to_thread

from rtorrentd.deletion.peers import CLOCK_MARGIN, PEER_TIMEOUT, Peer, devices_of
from rtorrentd.deletion.sharing import Holder, LinkScanner, SharingIndex
from rtorrentd.deletion.spelling import Spellings
from rtorrentd.deletion.unlisted import unlisted_rtorrents
from rtorrentd.errors import RpcError, TransportError, UnsafeDeletion
from rtorrentd.logger import get_logger
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import FileEntry, Torrent
from rtorrentd.vocabulary import PATH_NAMES

T = TypeVar("T")
log = get_logger("rtorrentd.deletion.neighbours")

Neighbours = Callable[[], Sequence[Peer]]

# Kept across polls: a directory whose mtime and ctime are unchanged is not listed again.
SCANNER = LinkScanner()


@dataclass(frozen=True, slots=True)
class Source:
    """One rtorrent: `url` is "" for the one acted on, else the other's URL."""

    url: str
    client: RtorrentClient


def _holder(url: str, torrent: Torrent) -> Holder:
    directory = torrent.directory or ""
    return Holder(url, torrent.hash, torrent.name, directory, torrent.path or directory)


def _who(holder: Holder) -> str:
    if holder.source.startswith("instance "):
        where = f" in the rtorrent of {holder.source}"
    else:
        where = f" in the other rtorrent {holder.source}" if holder.source else ""
    return f"the loaded torrent {holder.hash} ({holder.name!r}){where}"


def _peer_refusal(why: str) -> UnsafeDeletion:
    return UnsafeDeletion(
        f"refusing to delete: {why}; its torrents may use files on this filesystem, "
        "and which ones is unknown, so nothing there is deleted until it can be read "
        "again (the other filesystems are not held up)"
    )


def _no_answer(peer: Peer, error: str) -> UnsafeDeletion:
    return _peer_refusal(f"the rtorrent of instance {peer.name} ({peer.url}) {error}")


def _unreadable(url: str, exc: Exception) -> UnsafeDeletion:
    return UnsafeDeletion(
        f"refusing to delete: the other rtorrent {url} (safety.other_rtorrents) cannot be "
        f"read ({exc}), so which files it uses is unknown; start it, or remove it from "
        "safety.other_rtorrents"
    )


async def _guarded(url: str, call: Awaitable[T]) -> T:
    """A call on the instance at `url`; another instance's failure is a refusal,
    ours ("") propagates (the poll stops and the daemon backs off)."""
    try:
        return await call
    except (TransportError, RpcError) as exc:
        if not url:
            raise
        raise _unreadable(url, exc) from exc


@dataclass(slots=True)
class Sharing:
    """The loaded torrents of every instance, for one poll (see the module doc)."""

    sources: tuple[Source, ...]
    index: SharingIndex
    since: dict[str, int]
    neighbours: Neighbours = tuple
    files: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # The other instances of the daemon indexed in this poll, by `Peer.source`, as
    # they were then (their client, their publication's clock); and those that
    # refused a deletion of this poll (not asked again: each may cost PEER_TIMEOUT).
    peers: dict[str, Peer] = field(default_factory=dict)
    refused: dict[str, UnsafeDeletion] = field(default_factory=dict)
    # The deletion under way waits for the daemon's other instances until then, in
    # all (anyio's clock): PEER_TIMEOUT after it began to ask them.
    deadline: float = 0.0

    @classmethod
    async def read(
        cls,
        sources: Sequence[Source],
        scanner: LinkScanner = SCANNER,
        neighbours: Neighbours = tuple,
    ) -> Sharing:
        """Read our rtorrent's and `other_rtorrents`' torrents and index them (in a
        worker thread: one stat per directory, one cached walk per torrent's data).
        The daemon's other instances (`neighbours`) are indexed when a deletion
        needs them (`shared_paths`). Only the names and paths are read: rtorrent
        answers that list a third faster than one with the identity fields too."""
        since: dict[str, int] = {}
        holders: list[Holder] = []
        for source in sources:
            now = await _guarded(source.url, source.client.call("system.time"))
            # Without a usable clock, every torrent counts as added since: safe, slow.
            since[source.url] = (now if isinstance(now, int) else 0) - CLOCK_MARGIN
            loaded = await _guarded(source.url, source.client.snapshot(PATH_NAMES, identity=False))
            holders += (_holder(source.url, t) for t in loaded)
        index = await anyio.to_thread.run_sync(SharingIndex, holders, scanner)
        return cls(tuple(sources), index, since, neighbours)

    def forget(self, info_hash: str) -> None:
        """Our torrent `info_hash` was erased: it protects no file any more."""
        self.index.forget(("", info_hash))

    async def refresh(self) -> None:
        """Index the torrents every instance loaded since its snapshot."""
        for source in self.sources:
            since = self.since[source.url]
            added = await _guarded(
                source.url, source.client.loaded_since(since, PATH_NAMES, identity=False)
            )
            new = [_holder(source.url, t) for t in added if (source.url, t.hash) not in self.index]
            for holder in new:
                await anyio.to_thread.run_sync(self.index.add, holder)

    async def shared_paths(
        self,
        torrent: Torrent,
        entries: Sequence[FileEntry],
        *,
        refresh: bool = True,
        spellings: Spellings | None = None,
    ) -> set[str]:
        """The paths, as their torrents list them, of every file that a torrent
        which could share one of ours lists (`sharing.SharingIndex.candidates`).

        `refresh` first indexes the torrents loaded since (`refresh`): the plan
        that is carried out must; a preflight planned again later need not.
        `spellings`: the directory listings of the planning that follows.
        Refuses when such a torrent's directory is not absolute: then its files
        cannot be placed, so sharing cannot be checked.
        """
        if refresh:
            await self.refresh()
        directory = torrent.directory or ""
        path = torrent.path or directory
        ours = await anyio.to_thread.run_sync(_our_paths, self.index, path, directory, entries)
        devices = await anyio.to_thread.run_sync(devices_of, ours)
        counted = {s.url for s in self.sources} | await self._ask_peers(devices)

        def candidates() -> list[Holder]:
            found = self.index.candidates(ours, ("", torrent.hash), spellings)
            return [h for h in found if h.source in counted]

        holders = await anyio.to_thread.run_sync(candidates)
        for holder in holders:
            if not holder.directory.startswith("/"):
                raise UnsafeDeletion(
                    f"refusing to delete: {_who(holder)} has d.directory {holder.directory!r}, "
                    "which is not absolute, so sharing cannot be checked; give it an absolute "
                    "directory in rtorrent, or remove it"
                )
        await self._read_files(holders)
        return set().union(*(self.files.get(h.key, frozenset()) for h in holders))

    async def _ask_peers(self, devices: frozenset[int] | None) -> set[str]:
        """The sources of the daemon's instances whose torrents count for a victim
        on `devices`, each indexed and asked what it loaded since its publication.
        Raises `UnsafeDeletion` when one of them cannot be used; never waits more
        than `PEER_TIMEOUT`, and not at all for those on other filesystems."""
        relevant = [p for p in self.neighbours() if p.shares(devices)]
        for peer in relevant:
            if peer.source in self.refused:
                raise self.refused[peer.source]
        self.deadline = anyio.current_time() + PEER_TIMEOUT
        if any(p.unsettled for p in relevant):
            # The daemon is starting: wait for their first reads, within the bound.
            with anyio.CancelScope(deadline=self.deadline):
                for peer in relevant:
                    await peer.settled.wait()
            relevant = [p for p in self.neighbours() if p.shares(devices)]
        now = time.monotonic()
        for peer in relevant:
            if why := peer.unusable(now):
                self.refused[peer.source] = _peer_refusal(why)
                raise self.refused[peer.source]
        indexing = anyio.current_time()
        for peer in relevant:
            if peer.source not in self.peers and peer.publication is not None:
                self.peers[peer.source] = peer
                self.since[peer.source] = peer.publication.since
                await anyio.to_thread.run_sync(self._index_publication, peer)
        # Our own work does not count against the others' time.
        self.deadline += anyio.current_time() - indexing
        await self._loaded_since([self.peers[p.source] for p in relevant])
        return {p.source for p in relevant}

    def _index_publication(self, peer: Peer) -> None:
        if peer.publication is not None:
            self._index_all(peer.publication.holders(peer.source))

    def _index_all(self, holders: Sequence[Holder]) -> None:
        for holder in holders:
            self.index.add(holder)

    async def _loaded_since(self, peers: Sequence[Peer]) -> None:
        """Ask every one of `peers` at once for the torrents loaded since its
        publication, and index them; refuse if one fails or is silent."""
        answers: dict[str, tuple[Torrent, ...]] = {}
        errors: dict[str, str] = {}

        async def ask(peer: Peer) -> None:
            since = self.since[peer.source]
            try:
                answers[peer.source] = await peer.client.loaded_since(since, PATH_NAMES)
            except (TransportError, RpcError) as exc:
                errors[peer.source] = f"cannot be read ({exc})"

        with anyio.CancelScope(deadline=self.deadline):
            async with anyio.create_task_group() as tasks:
                for peer in peers:
                    tasks.start_soon(ask, peer)
        for peer in peers:
            if peer.source not in answers:
                silent = f"did not answer within {PEER_TIMEOUT:g} s"
                self.refused[peer.source] = _no_answer(peer, errors.get(peer.source, silent))
        for peer in peers:
            if peer.source in self.refused:
                raise self.refused[peer.source]
        for peer in peers:
            new = [
                _holder(peer.source, t)
                for t in answers[peer.source]
                if (peer.source, t.hash) not in self.index
            ]
            if new:
                await anyio.to_thread.run_sync(self._index_all, new)

    async def _read_files(self, holders: Sequence[Holder]) -> None:
        for source in self.sources:
            missing = self._missing(holders, source.url)
            if missing:
                hashes = [h.hash for h in missing]
                read = await _guarded(source.url, source.client.all_files(hashes))
                self._keep_files(missing, read)
        for peer in self.peers.values():
            missing = self._missing(holders, peer.source)
            if missing:
                self._keep_files(missing, await self._peer_files(peer, [h.hash for h in missing]))

    def _missing(self, holders: Sequence[Holder], source: str) -> list[Holder]:
        return [h for h in holders if h.source == source and h.key not in self.files]

    def _keep_files(
        self, holders: Sequence[Holder], read: dict[str, tuple[FileEntry, ...]]
    ) -> None:
        for holder in holders:
            listed = read.get(holder.hash, ())
            self.files[holder.key] = frozenset(
                posixpath.join(holder.directory, e.path) for e in listed
            )

    async def _peer_files(
        self, peer: Peer, hashes: Sequence[str]
    ) -> dict[str, tuple[FileEntry, ...]]:
        """The files of `hashes` in the rtorrent of instance `peer`, within `PEER_TIMEOUT`."""
        if peer.source in self.refused:
            raise self.refused[peer.source]
        error = f"did not answer within {PEER_TIMEOUT:g} s"
        with anyio.CancelScope(deadline=self.deadline):
            try:
                return await peer.client.all_files(hashes)
            except (TransportError, RpcError) as exc:
                error = f"cannot be read ({exc})"
        refusal = self.refused[peer.source] = _no_answer(peer, error)
        raise refusal


def _our_paths(
    index: SharingIndex, path: str, directory: str, entries: Sequence[FileEntry]
) -> list[str]:
    """Our data path, plus where our symlinked files lead when our data holds
    links: a torrent there lists the link's target, which planning keeps too."""
    if index.holds_link(path) is False:
        return [path]
    return [path, *(os.path.realpath(posixpath.join(directory, e.path)) for e in entries)]


@dataclass(slots=True)
class PollSharing:
    """`Sharing` read at the poll's first deletion (polls without one read nothing)."""

    sources: tuple[Source, ...]
    allowed_roots: tuple[str, ...] = ()
    scanner: LinkScanner = SCANNER
    neighbours: Neighbours = tuple
    _sharing: Sharing | None = None
    _refusal: UnsafeDeletion | None = None

    async def get(self) -> Sharing:
        """The poll's `Sharing`, read now if this is its first deletion; an instance
        that could not be read refuses every deletion of the poll, without asking
        it again (each attempt may take a whole transport timeout)."""
        if self._refusal is not None:
            raise self._refusal
        if self._sharing is None:
            try:
                self._sharing = await Sharing.read(self.sources, self.scanner, self.neighbours)
            except UnsafeDeletion as exc:
                self._refusal = exc
                raise
            await self._warn_unlisted()
        return self._sharing

    async def _warn_unlisted(self) -> None:
        """Warn of rtorrents using our allowed roots that nobody listed (`unlisted`)."""
        known: set[int] = set()
        for source in self.sources:
            try:
                pid = await source.client.call("system.pid")
            except (TransportError, RpcError):
                continue  # read a moment ago; if it is gone now, the next call says so
            if isinstance(pid, int):
                known.add(pid)
        # The daemon's other instances' rtorrents are known too: they are neighbours.
        for peer in self.neighbours():
            if peer.publication is not None and peer.publication.pid is not None:
                known.add(peer.publication.pid)
        found = await anyio.to_thread.run_sync(unlisted_rtorrents, self.allowed_roots, known)
        for other in found:
            log.warning(
                "sharing.unlisted_rtorrent",
                pid=other.pid,
                path=other.path,
                advice="another rtorrent uses files under safety.allowed_roots; list its "
                "URL in safety.other_rtorrents, or its torrents' files may be deleted",
            )

    def forget(self, info_hash: str) -> None:
        """Our torrent `info_hash` was erased in this poll."""
        if self._sharing is not None:
            self._sharing.forget(info_hash)
