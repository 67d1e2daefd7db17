"""One poll: snapshot, remember, observe the disk, plan, carry out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import anyio.to_thread
import structlog

from rtorrentd.config.model import Action, Config
from rtorrentd.deletion import disk, executor, preflight
from rtorrentd.deletion.journal import Journal
from rtorrentd.deletion.neighbours import PATH_NAMES
from rtorrentd.deletion.peers import Membership, publication, read_clock
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine import facts
from rtorrentd.engine import plan as engine
from rtorrentd.engine import times as timing
from rtorrentd.engine.facts import FileFact, Files
from rtorrentd.engine.memory import Memory, remember, saved, unsaved
from rtorrentd.engine.plan import Plan, Step
from rtorrentd.engine.space import Disk
from rtorrentd.errors import RpcFault
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import EXPENSIVE

log = structlog.get_logger("rtorrentd.service.poll")


STATES = ("seeding", "downloading", "stopped_complete", "stopped_incomplete")


def torrent_state(torrent: Torrent) -> str:
    """One of `STATES`: started or not, complete or not."""
    if torrent.started:
        return "seeding" if torrent.complete else "downloading"
    return "stopped_complete" if torrent.complete else "stopped_incomplete"


def count_states(torrents: Sequence[Torrent]) -> tuple[tuple[str, int, int], ...]:
    """(state, torrents, bytes) for every one of `STATES`, zeros included."""
    counts = dict.fromkeys(STATES, 0)
    sizes = dict.fromkeys(STATES, 0)
    for torrent in torrents:
        state = torrent_state(torrent)
        counts[state] += 1
        sizes[state] += torrent.size or 0
    return tuple((state, counts[state], sizes[state]) for state in STATES)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll saw, decided and did."""

    torrents: int
    plan: Plan
    results: tuple[StepResult, ...]
    memory: Memory
    duration: float
    # (state, torrents, bytes) for each of `STATES`, and (policy path, free bytes)
    # for each space policy measured: for the metrics.
    states: tuple[tuple[str, int, int], ...] = ()
    free: tuple[tuple[str, int], ...] = ()

    @property
    def deleted(self) -> tuple[StepResult, ...]:
        """Torrents whose data was deleted in this poll."""
        return tuple(
            r for r in self.results if r.result is Result.DONE and r.step.action is Action.DELETE
        )


@dataclass(frozen=True, slots=True)
class Observed:
    """What the edge measured for the engine: the disk (None without space
    policies) and the file facts of the torrents the engine asked about."""

    disk: Disk | None
    files: Files


def rechecker(
    config: Config, now: float, memory: Memory, files: Files | None = None
) -> executor.StillMatches:
    """The executor's re-check: does the fresh torrent still get this very step?

    A rule step: the same rule still decides it. A space step: still no rule
    decides it (a `keep` added meanwhile protects it) and it still satisfies the
    policy's `candidates`. File facts are the ones read for the plan; the
    executor checks every file against the disk again anyway.
    """

    def still_matches(fresh: Torrent, step: Step) -> bool:
        return engine.recheck(fresh, step, config, now, memory, files=files)

    return still_matches


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
    instance of a daemon (`member`) publishes its snapshot for the others."""
    names = engine.fetch_names(config)
    if member is not None:
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


async def save_times(client: RtorrentClient, memory: Memory) -> Memory:
    """Write the records that moved (`memory.unsaved`) into rtorrent, one batched
    `system.multicall` of `d.custom.set`; returns the memory that knows it. A
    torrent erased meanwhile is left out (its fault is ignored)."""
    records = unsaved(memory)
    if not records:
        return memory
    calls = [("d.custom.set", [h, timing.RECORD_KEY, text]) for h, text in records.items()]
    replies = await client.multicall(calls)
    written = {
        h: text
        for (h, text), reply in zip(records.items(), replies, strict=True)
        if not isinstance(reply, RpcFault)
    }
    log.debug("times.saved", torrents=len(written))
    return saved(memory, written)


async def plan_now(client: RtorrentClient, config: Config, memory: Memory, now: float) -> Plan:
    """What `poll_once` would do now, without doing it (`rtorrentd plan`)."""
    return (await snapshot_and_plan(client, config, memory, now)).plan


def other_clients(config: Config) -> tuple[tuple[str, RtorrentClient], ...]:
    """A client for each of `[safety] other_rtorrents`, with [rtorrent]'s timeouts
    (no login: such an instance is reached on this machine, by socket or loopback).
    Opening a transport connects nothing: a deletion's first call does."""
    settings = config.rtorrent
    return tuple(
        (
            url,
            RtorrentClient(
                open_transport(
                    url,
                    timeout=settings.timeout,
                    connect_timeout=settings.connect_timeout,
                    max_reply=settings.max_reply,
                )
            ),
        )
        for url in config.safety.other_rtorrents
    )


async def poll_once(
    client: RtorrentClient,
    config: Config,
    memory: Memory,
    *,
    dry_run: bool,
    now: float,
    should_stop: Callable[[], bool] = lambda: False,
    unlinking: executor.Unlinking = nullcontext,
    measure: Callable[[Sequence[Torrent]], Disk] | None = None,
    filesystems: preflight.Filesystems | None = None,
    journal: Journal | None = None,
    others: Sequence[tuple[str, RtorrentClient]] | None = None,
    member: Membership | None = None,
) -> PollResult:
    """One poll. Raises `TransportError`/`RpcError` when rtorrent cannot be read;
    then nothing was done and the poll should be retried later. Once `should_stop()`
    holds, no further step is begun (the one under way is finished). `unlinking`
    is held while a deletion unlinks and erases (`executor.apply`). `measure`
    replaces `disk.measure` (tests). `filesystems`: the allowed roots' filesystems
    when the daemon started (`preflight.remember`). `journal`: deletions under
    way (`deletion.journal`), each finished by a later poll. `others` are the
    clients of `[safety] other_rtorrents` (by default opened from the configuration).
    `member`: this instance's place among the daemon's instances (`deletion.peers`):
    its snapshot is published for them, and theirs keep our deletions off their files."""
    started = time.monotonic()
    planned = await snapshot_and_plan(client, config, memory, now, measure=measure, member=member)
    torrents, memory, observed, plan = (
        planned.torrents,
        planned.memory,
        planned.observed,
        planned.plan,
    )
    for outcome in plan.space:
        log.info(
            "space.low",
            path=outcome.path,
            free=outcome.free,
            min_free=outcome.min_free,
            target_free=outcome.target_free,
            deletions=outcome.deletions,
            projected=outcome.projected,
            short=outcome.short,
        )
    for note in plan.notes:
        log.warning("plan.held", note=note)
    results = await executor.apply(
        plan,
        client,
        allowed_roots=config.safety.allowed_roots,
        verify_budget=config.safety.verify_budget,
        names=engine.fetch_names(config),
        still_matches=rechecker(config, now, memory, observed.files),
        dry_run=dry_run,
        should_stop=should_stop,
        unlinking=unlinking,
        filesystems=filesystems,
        journal=journal,
        other_rtorrents=other_clients(config) if others is None else others,
        member=member,
    )
    memory = await save_times(client, memory)
    duration = time.monotonic() - started
    log.info(
        "poll.done",
        torrents=len(torrents),
        steps=len(plan.steps),
        held=len(plan.held),
        duration_ms=round(duration * 1000),
        dry_run=dry_run,
    )
    free = () if observed.disk is None else observed.disk.filesystems.items()
    return PollResult(
        len(torrents),
        plan,
        results,
        memory,
        duration,
        count_states(torrents),
        tuple((path, fs.free) for path, fs in free),
    )
