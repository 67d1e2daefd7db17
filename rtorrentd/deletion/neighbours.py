"""The torrents that share the disk with the one being deleted: those of the
rtorrent we act on and of every other rtorrent named in `[safety] other_rtorrents`.

Per poll, before its first deletion, each instance's list of loaded torrents is
read once (one `d.multicall2` of the path fields, after `system.time`) and indexed
by `sharing.SharingIndex`. Before each deletion (`shared_paths`):
- every instance is asked for the torrents loaded since that snapshot (one
  `d.multicall.filtered` on `d.load_date`, answered from rtorrent's own scan):
  a torrent added meanwhile is indexed before its files could be missed;
- only the torrents that could list one of our files are read (`f.multicall`,
  cached for the poll), the others never cross the socket.
Another instance that cannot be read refuses the deletion: nothing is guessed.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio.to_thread
import structlog

from rtorrentd.deletion.sharing import Holder, LinkScanner, SharingIndex
from rtorrentd.deletion.unlisted import unlisted_rtorrents
from rtorrentd.errors import RpcError, TransportError, UnsafeDeletion
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import FileEntry, Torrent

T = TypeVar("T")
log = structlog.get_logger("rtorrentd.deletion.neighbours")

# The fields the sharing check needs of every loaded torrent.
PATH_NAMES = frozenset({"path", "directory", "multi_file"})
# rtorrent's d.load_date and system.time come from its cached clock, which may lag
# a little behind: ask for a margin more (torrents already known are ignored).
_CLOCK_MARGIN = 2

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
    where = f" in the other rtorrent {holder.source}" if holder.source else ""
    return f"the loaded torrent {holder.hash} ({holder.name!r}){where}"


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
    files: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    async def read(cls, sources: Sequence[Source], scanner: LinkScanner = SCANNER) -> Sharing:
        """Read every instance's torrents and index them (in a worker thread: one
        stat per directory, one cached walk per torrent's data)."""
        since: dict[str, int] = {}
        holders: list[Holder] = []
        for source in sources:
            now = await _guarded(source.url, source.client.call("system.time"))
            # Without a usable clock, every torrent counts as added since: safe, slow.
            since[source.url] = (now if isinstance(now, int) else 0) - _CLOCK_MARGIN
            loaded = await _guarded(source.url, source.client.snapshot(PATH_NAMES))
            holders += (_holder(source.url, t) for t in loaded)
        index = await anyio.to_thread.run_sync(SharingIndex, holders, scanner)
        return cls(tuple(sources), index, since)

    def forget(self, info_hash: str) -> None:
        """Our torrent `info_hash` was erased: it protects no file any more."""
        self.index.forget(("", info_hash))

    async def refresh(self) -> None:
        """Index the torrents every instance loaded since its snapshot."""
        for source in self.sources:
            since = self.since[source.url]
            added = await _guarded(source.url, source.client.loaded_since(since, PATH_NAMES))
            new = [_holder(source.url, t) for t in added if (source.url, t.hash) not in self.index]
            for holder in new:
                await anyio.to_thread.run_sync(self.index.add, holder)

    async def shared_paths(self, torrent: Torrent, entries: Sequence[FileEntry]) -> set[str]:
        """The paths, as their torrents list them, of every file that a torrent
        which could share one of ours lists (`sharing.SharingIndex.candidates`).

        Refuses when such a torrent's directory is not absolute: then its files
        cannot be placed, so sharing cannot be checked.
        """
        await self.refresh()
        directory = torrent.directory or ""
        path = torrent.path or directory

        def candidates() -> list[Holder]:
            ours = _our_paths(self.index, path, directory, entries)
            return self.index.candidates(ours, ("", torrent.hash))

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

    async def _read_files(self, holders: Sequence[Holder]) -> None:
        for source in self.sources:
            missing = [h for h in holders if h.source == source.url and h.key not in self.files]
            if not missing:
                continue
            hashes = [h.hash for h in missing]
            read = await _guarded(source.url, source.client.all_files(hashes))
            for holder in missing:
                listed = read.get(holder.hash, ())
                self.files[holder.key] = frozenset(
                    posixpath.join(holder.directory, e.path) for e in listed
                )


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
                self._sharing = await Sharing.read(self.sources, self.scanner)
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
