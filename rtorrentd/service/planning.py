"""Everything a poll does before acting: snapshot, remember, observe, plan.

Apart from `poll` so that `rtorrentd plan` imports no deletion machinery: start-up
is most of a one-shot command's time (issue 15), so what only a disk measurement,
a recycle bin or a published list needs is imported where it is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import anyio.to_thread

from rtorrentd.config.model import Config
from rtorrentd.deletion import disk
from rtorrentd.engine import facts
from rtorrentd.engine import plan as engine
from rtorrentd.engine.derived import REMEMBERING
from rtorrentd.engine.facts import FileFact, Files
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import Plan
from rtorrentd.engine.space import Disk
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import EXPENSIVE, PATH_NAMES

if TYPE_CHECKING:
    from rtorrentd.deletion.peers import Membership


@dataclass(frozen=True, slots=True)
class Observed:
    """What the edge measured for the engine: the disk (None without space
    policies) and the file facts of the torrents the engine asked about."""

    disk: Disk | None
    files: Files


async def observe(
    client: RtorrentClient,
    config: Config,
    torrents: Sequence[Torrent],
    now: float,
    memory: Memory,
    *,
    measure: Callable[[Sequence[Torrent]], Disk] | None = None,
) -> Observed:
    """Measure the disk, then read files in rounds until the engine wants no more.

    Round one reads the torrents whose rule outcome depends on `hardlinked` or
    `shared`, and the first space candidates; each further round reads twice as
    many candidates, until the projection reaches its target. With `shared` or a
    low filesystem, the torrents whose data could overlap theirs are read too
    (`facts.overlapping`), and only those. `measure` replaces `disk.measure`
    (tests). Nothing at all is read for a configuration without space policies
    and expensive names.
    """
    if not config.space and not config.names() & EXPENSIVE:
        return Observed(None, {})
    if config.space:
        probe = measure or (lambda ts: disk.measure(config.space, ts))
        measured: Disk | None = await anyio.to_thread.run_sync(probe, torrents)
        if measured is not None and config.trash is not None:
            from rtorrentd.deletion import trash_upkeep

            binned = await anyio.to_thread.run_sync(trash_upkeep.binned, config.trash)
            measured = replace(measured, bin=binned)
    else:
        measured = None
    files = await _read_rounds(client, config, torrents, now, memory, measured=measured)
    return Observed(measured, files)


async def _read_rounds(
    client: RtorrentClient,
    config: Config,
    torrents: Sequence[Torrent],
    now: float,
    memory: Memory,
    *,
    measured: Disk | None,
) -> Files:
    files: dict[str, tuple[FileFact, ...]] = {}
    by_hash = {t.hash: t for t in torrents}
    paths: dict[str, str] | None = None
    limit = engine.FIRST_BATCH
    while True:  # ends: each round reads every hash it wants, and wants only unread ones
        wanted = engine.files_wanted(
            torrents, config, now, memory, disk=measured, files=files, limit=limit
        )
        if not wanted.hashes:
            return files
        hashes = set(wanted.hashes)
        if wanted.sharers:
            paths = paths or {t.hash: t.path or "" for t in torrents}
            hashes = facts.overlapping(paths, hashes)
        files.update(await disk.read_files(client, by_hash, hashes - files.keys()))
        limit *= 2


@dataclass(frozen=True, slots=True)
class Planned:
    """A snapshot, the memory that includes it, what was observed, and the plan."""

    torrents: Sequence[Torrent]
    memory: Memory
    observed: Observed
    plan: Plan


async def publish(
    client: RtorrentClient, member: Membership, names: frozenset[str] = frozenset()
) -> tuple[Torrent, ...]:
    """Read rtorrent's clock and list (`names` and the path fields), and publish the
    list for the daemon's other instances (`deletion.peers`); returns the list."""
    from rtorrentd.deletion.peers import publication, read_clock

    at = time.monotonic()
    clock = await read_clock(client)
    torrents = await client.snapshot(names | PATH_NAMES)
    published = await anyio.to_thread.run_sync(publication, torrents, clock, at)
    member.peers.publish(member.name, published)
    return torrents


async def snapshot_and_plan(
    client: RtorrentClient,
    config: Config,
    memory: Memory,
    now: float,
    *,
    measure: Callable[[Sequence[Torrent]], Disk] | None = None,
    member: Membership | None = None,
) -> Planned:
    """Snapshot, remember, observe (disk, files), plan: everything but acting. An
    instance of a daemon (`member`) publishes its snapshot for the others, when one
    of them may delete."""
    names = engine.fetch_names(config)
    if member is not None and member.read_by_others():
        torrents = await publish(client, member, names)
    else:
        torrents = await client.snapshot(names)
    memory = remember(memory, torrents, now, config.daemon.window, cap=time_cap(config))
    observed = await observe(client, config, torrents, now, memory, measure=measure)
    plan = engine.plan(torrents, config, now, memory, disk=observed.disk, files=observed.files)
    return Planned(torrents, memory, observed, plan)


# The names that need time tracked between polls and kept in rtorrent (engine.times):
# `idle` and `uploaded_recent` too, whose history the record carries over restarts.
TIMED = frozenset(
    {"seed_time", "leech_time", "last_upload", "seed_time_since", "idle", "uploaded_recent"}
)


def time_cap(config: Config) -> float | None:
    """The most one gap between polls credits to `seed_time` (twice the interval:
    a daemon that was down credits no time it did not see); None: not tracked."""
    return 2 * config.daemon.interval if config.names() & TIMED else None


async def plan_now(client: RtorrentClient, config: Config, memory: Memory, now: float) -> Plan:
    """What `poll_once` would do now, without doing it (`rtorrentd plan`).

    From an empty memory, with rules that read none of it (`derived.REMEMBERING`),
    the snapshot is not remembered: the plan is the same, and folding 10,000
    torrents into a memory nobody keeps is a tenth of a one-shot plan's CPU time.
    """
    if memory.seen or config.names() & REMEMBERING:
        return (await snapshot_and_plan(client, config, memory, now)).plan
    torrents = await client.snapshot(engine.fetch_names(config))
    observed = await observe(client, config, torrents, now, memory)
    return engine.plan(torrents, config, now, memory, disk=observed.disk, files=observed.files)
