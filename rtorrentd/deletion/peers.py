"""The other instances of one daemon as neighbours: each keeps the others' files.

In `rtorrentd run -c DIR`, every instance publishes, each time it reads its
rtorrent's list of torrents, what the sharing check needs of it (`Publication`:
each torrent's hash, name, directory and data path, compressed; the filesystems
that data lies on; rtorrent's clock and pid) into the registry the fleet shares
(`Peers`). An instance about to delete a torrent never reads another instance's
whole list: it takes that instance's latest publication, and asks it only for the
torrents loaded since (`neighbours.Sharing`). Only the instances whose data can
share a filesystem with the victim's are asked (`Peer.shares`), all at once, and
for `PEER_TIMEOUT` seconds at most together. An instance whose rtorrent is down,
does not answer in time, or whose publication is too old (`Peer.stale_after`)
refuses the deletions on a filesystem it shares, and only those: never a guess
that lets data go, never a longer wait.

Which filesystems an instance's data can be on: those of its allowed roots, and
those of its torrents' directories (`d.directory`, followed through links; for
one that does not exist, its nearest existing parent's). A torrent whose
directory is not absolute could be anywhere: then every filesystem.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import anyio

from rtorrentd.config.model import Config
from rtorrentd.deletion.preflight import Filesystems
from rtorrentd.deletion.sharing import Holder
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import Torrent

# The most a deletion waits for the other instances of the daemon, all together
# (each is asked at once); also each peer call's own timeout.
PEER_TIMEOUT = 3.0
# rtorrent's d.load_date and system.time come from its cached clock, which may lag
# a little behind: ask for a margin more (torrents already known are ignored).
CLOCK_MARGIN = 2


@dataclass(frozen=True, slots=True)
class Clock:
    """rtorrent's clock (`system.time`) and pid, read just before its list."""

    now: int | None
    pid: int | None


async def read_clock(client: RtorrentClient) -> Clock:
    """`system.time` and `system.pid` in one request (a fault leaves that one None)."""
    now, pid = await client.multicall([("system.time", []), ("system.pid", [])])
    return Clock(
        now if isinstance(now, int) and not isinstance(now, bool) else None,
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
    )


def _device(path: str) -> int | None:
    """The filesystem `path` is on (followed through links), or its nearest
    existing parent's; None for a path that is not absolute."""
    if not path.startswith("/"):
        return None
    while True:
        try:
            return os.stat(path).st_dev
        except (OSError, ValueError):
            if path == "/":
                return None
            path = os.path.dirname(path.rstrip("/")) or "/"


def devices_of(paths: Iterable[str]) -> frozenset[int] | None:
    """The filesystems of `paths` (`_device`); None when one of them could be on any."""
    found: set[int] = set()
    for path in dict.fromkeys(paths):
        device = _device(path)
        if device is None:
            return None
        found.add(device)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Publication:
    """What one instance last read of its rtorrent, for the other instances."""

    since: int  # rtorrent's clock before the list was read, less CLOCK_MARGIN
    at: float  # time.monotonic() when published
    pid: int | None
    count: int
    packed: bytes  # zlib of JSON [[hash, name, directory, path], ...]: ~40 bytes a torrent
    devices: frozenset[int] | None  # None: some torrent's data could be anywhere

    def holders(self, source: str) -> list[Holder]:
        """The published torrents as the sharing check sees them, from `source`."""
        rows = json.loads(zlib.decompress(self.packed))
        return [Holder(source, h, name, directory, path) for h, name, directory, path in rows]


def publication(torrents: Sequence[Torrent], clock: Clock, at: float | None = None) -> Publication:
    """A `Publication` of `torrents` (read with `neighbours.PATH_NAMES`). Stats each
    distinct directory once: run it in a worker thread."""
    rows = []
    for t in torrents:
        directory = t.directory or ""
        rows.append((t.hash, t.name, directory, t.path or directory))
    packed = zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 1)
    # Without a usable clock, every torrent counts as loaded since: safe, slow.
    since = (clock.now or 0) - CLOCK_MARGIN
    devices = devices_of(directory for _, _, directory, _ in rows)
    moment = time.monotonic() if at is None else at
    return Publication(since, moment, clock.pid, len(rows), packed, devices)


@dataclass(frozen=True, slots=True)
class Peer:
    """One instance of the daemon as the others see it."""

    name: str
    url: str
    client: RtorrentClient  # with timeouts of PEER_TIMEOUT at most
    roots: frozenset[int]  # the filesystems of its allowed roots
    stale_after: float  # seconds: an older publication is not trusted
    deletes: bool = False  # it has allowed roots: it may delete, so it reads the others
    publication: Publication | None = None
    down: str = ""  # why its rtorrent cannot be read now; "" when it could last time
    # Set once it has published, or found its rtorrent down: a deletion at the
    # daemon's start waits for it (PEER_TIMEOUT at most) rather than refuse at once.
    settled: anyio.Event = field(default_factory=anyio.Event, compare=False)

    @property
    def unsettled(self) -> bool:
        """Whether it has yet to read its rtorrent once (or fail to)."""
        return self.publication is None and not self.down

    @property
    def source(self) -> str:
        """How its torrents are named in the sharing check (`Holder.source`)."""
        return f"instance {self.name}"

    def devices(self) -> frozenset[int] | None:
        """The filesystems its data can be on; None: any. Before its first read,
        unknown (a deletion waits for that read, `PEER_TIMEOUT` at most); if that
        read failed, those of its allowed roots."""
        if self.publication is None:
            return None if self.unsettled else self.roots
        published = self.publication.devices
        return None if published is None else self.roots | published

    def shares(self, devices: frozenset[int] | None) -> bool:
        """Whether its data can be on one of `devices` (None: unknown, so yes)."""
        mine = self.devices()
        return devices is None or mine is None or not mine.isdisjoint(devices)

    def unusable(self, now: float) -> str:
        """Why its publication cannot be used for a deletion now; "" when it can."""
        where = f"instance {self.name} ({self.url})"
        if self.down:
            return f"the rtorrent of {where} cannot be read ({self.down})"
        if self.publication is None:
            return f"{where} has not read its rtorrent yet"
        age = now - self.publication.at
        if age > self.stale_after:
            return (
                f"{where} last read its rtorrent {age:.0f} s ago (more than "
                f"{self.stale_after:.0f} s: twice its interval and its timeout)"
            )
        return ""


def stale_after(config: Config) -> float:
    """How old an instance's publication may be: its poll's own deadline (twice its
    interval and its timeout); a poll that runs longer is cut short anyway."""
    return 2 * config.daemon.interval + config.rtorrent.timeout


class Peers:
    """The instances of one daemon, for one another (one event loop changes it;
    worker threads get frozen `Peer`s)."""

    def __init__(self) -> None:
        self._peers: dict[str, Peer] = {}

    def join(self, name: str, config: Config, client: RtorrentClient, roots: Iterable[int]) -> None:
        """(Re)configure instance `name`; its publication stays if its rtorrent does."""
        old = self._peers.get(name)
        same = old is not None and old.url == config.rtorrent.url
        peer = Peer(
            name,
            config.rtorrent.url,
            client,
            frozenset(roots),
            stale_after(config),
            bool(config.safety.allowed_roots),
        )
        if old is not None and same:
            peer = replace(peer, publication=old.publication, down=old.down, settled=old.settled)
        self._peers[name] = peer

    def leave(self, name: str, client: RtorrentClient | None = None) -> None:
        """Instance `name` ended: its rtorrent is nobody's neighbour any more (with
        `client`: only if it is still the one joined with it, not a newer one's)."""
        peer = self._peers.get(name)
        if peer is not None and (client is None or peer.client is client):
            del self._peers[name]

    def publish(self, name: str, published: Publication) -> None:
        """Instance `name` read its rtorrent: `published` replaces what it had."""
        if name in self._peers:
            self._peers[name] = replace(self._peers[name], publication=published, down="")
            self._peers[name].settled.set()

    def down(self, name: str, reason: str) -> None:
        """Instance `name` cannot read its rtorrent (`reason`)."""
        if name in self._peers:
            self._peers[name] = replace(self._peers[name], down=reason or "unreachable")
            self._peers[name].settled.set()

    def others(self, name: str) -> tuple[Peer, ...]:
        """Every instance but `name`, as they are now."""
        return tuple(p for n, p in self._peers.items() if n != name)

    def get(self, name: str) -> Peer | None:
        """Instance `name`, if it is one."""
        return self._peers.get(name)

    def __len__(self) -> int:
        return len(self._peers)


@dataclass(frozen=True, slots=True)
class Membership:
    """An instance's place in the daemon's `Peers`: whom it publishes as."""

    peers: Peers
    name: str

    def others(self) -> tuple[Peer, ...]:
        """The other instances, as they are now."""
        return self.peers.others(self.name)

    def read_by_others(self) -> bool:
        """Whether another instance may delete, and so read what this one publishes:
        with none, nothing is published (its path fields are not even fetched)."""
        return any(p.deletes for p in self.others())


def root_devices(filesystems: Filesystems) -> frozenset[int]:
    """The devices of `preflight.remember`'s filesystems (those it could examine)."""
    return frozenset(fs.device for fs in filesystems.values() if fs is not None)


def peer_config(config: Config) -> Config:
    """`config` with timeouts of `PEER_TIMEOUT` at most: for the client the other
    instances use to ask this one's rtorrent."""
    settings = config.rtorrent
    limited = replace(
        settings,
        timeout=min(settings.timeout, PEER_TIMEOUT),
        connect_timeout=min(settings.connect_timeout, PEER_TIMEOUT),
    )
    return replace(config, rtorrent=limited)
