"""One poll: snapshot, remember, observe the disk, plan (`planning`), carry out."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter

import anyio.to_thread

from rtorrentd.config.model import DELETING, Config
from rtorrentd.deletion import executor, preflight, trash_upkeep
from rtorrentd.deletion.journal import Journal
from rtorrentd.deletion.peers import Membership
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine import plan as engine
from rtorrentd.engine import times as timing
from rtorrentd.engine.facts import Files
from rtorrentd.engine.memory import Memory, saved, unsaved
from rtorrentd.engine.plan import Plan, Step
from rtorrentd.engine.space import Disk
from rtorrentd.errors import RpcFault, TrashError
from rtorrentd.logger import get_logger
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.planning import (
    TIMED,
    Observed,
    Planned,
    observe,
    plan_now,
    publish,
    snapshot_and_plan,
    time_cap,
)
from rtorrentd.torrent import Torrent

__all__ = [
    "TIMED",
    "Observed",
    "Planned",
    "PollResult",
    "observe",
    "plan_now",
    "poll_once",
    "publish",
    "rechecker",
    "save_times",
    "snapshot_and_plan",
    "time_cap",
]

log = get_logger("rtorrentd.service.poll")


STATES = ("seeding", "downloading", "stopped_complete", "stopped_incomplete")


# A torrent's state by (started, complete), None read as False: started or not,
# complete or not.
_STATE_OF = {
    (True, True): "seeding",
    (True, False): "downloading",
    (False, True): "stopped_complete",
    (False, False): "stopped_incomplete",
}
_STARTED, _COMPLETE, _SIZE = attrgetter("started"), attrgetter("complete"), attrgetter("size")


def count_states(torrents: Sequence[Torrent]) -> tuple[tuple[str, int, int], ...]:
    """(state, torrents, bytes) for every one of `STATES`, zeros included.

    A column at a time, in C (`map`, `Counter`, `compress`): every poll counts
    every torrent, and a Python loop over them was 95 ms of a poll at 100,000."""
    started = map(bool, map(_STARTED, torrents))
    complete = map(bool, map(_COMPLETE, torrents))
    states = list(map(_STATE_OF.__getitem__, zip(started, complete, strict=True)))
    counts = Counter(states)
    sizes = [size or 0 for size in map(_SIZE, torrents)]
    return tuple(
        (state, counts[state], sum(compress(sizes, map(state.__eq__, states)))) for state in STATES
    )


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
    bin: trash_upkeep.BinState | None = None  # the recycle bin after the poll

    @property
    def deleted(self) -> tuple[StepResult, ...]:
        """Torrents whose data was deleted (or trashed) in this poll."""
        return tuple(
            r for r in self.results if r.result is Result.DONE and r.step.action in DELETING
        )


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
            bin_freed=outcome.bin_freed,
        )
    for note in plan.notes:
        log.warning("plan.held", note=note)
    bin_state = await _bin_upkeep(config, torrents, now, plan, dry_run=dry_run)
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
        trash_dir="" if config.trash is None else config.trash.path,
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
        bin_state,
    )


async def _bin_upkeep(
    config: Config, torrents: Sequence[Torrent], now: float, plan: Plan, *, dry_run: bool
) -> trash_upkeep.BinState | None:
    """The recycle bin's upkeep before any step: a crash's leftovers finished (a
    resumed `trash` needs its files back in place first), the entries the space
    policies counted on emptied, the expired ones too. A bin that cannot be read is
    logged; the steps go on (a `trash` step then fails on its own)."""
    if config.trash is None:
        return None
    emptying = [name for outcome in plan.space for name in outcome.emptied]
    loaded = frozenset(t.hash for t in torrents)
    settings = config.trash

    def run() -> trash_upkeep.BinState:
        return trash_upkeep.upkeep(settings, loaded, now, emptying, dry_run=dry_run)

    try:
        return await anyio.to_thread.run_sync(run)
    except (TrashError, OSError) as exc:
        log.error("trash.unreadable", path=settings.path, error=str(exc))
        return None
