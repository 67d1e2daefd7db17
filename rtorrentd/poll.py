"""One poll: snapshot, remember, plan, carry out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from rtorrentd import engine, executor
from rtorrentd.client import RtorrentClient
from rtorrentd.config import Config
from rtorrentd.engine import Plan, Step
from rtorrentd.executor import StepResult
from rtorrentd.memory import Memory, remember
from rtorrentd.torrent import Torrent

log = structlog.get_logger("rtorrentd.poll")


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll saw, decided and did."""

    torrents: int
    plan: Plan
    results: tuple[StepResult, ...]
    memory: Memory
    duration: float

    @property
    def deleted(self) -> tuple[StepResult, ...]:
        """Torrents whose data was deleted in this poll."""
        return tuple(
            r for r in self.results if r.result == "done" and r.step.action.value == "delete"
        )


def rechecker(config: Config, now: float, memory: Memory) -> executor.StillMatches:
    """The executor's re-check: does the fresh torrent still get this very step?"""

    def still_matches(fresh: Torrent, step: Step) -> bool:
        again = engine.decide(fresh, config, now, memory)
        return again is not None and (again.action, again.rule) == (step.action, step.rule)

    return still_matches


async def poll_once(
    client: RtorrentClient,
    config: Config,
    memory: Memory,
    *,
    dry_run: bool,
    now: float,
    should_stop: Callable[[], bool] = lambda: False,
) -> PollResult:
    """One poll. Raises `TransportError`/`RpcError` when rtorrent cannot be read;
    then nothing was done and the poll should be retried later. Once `should_stop()`
    holds, no further step is begun (the one under way is finished)."""
    started = time.monotonic()
    torrents = await client.snapshot(engine.fetch_names(config))
    memory = remember(memory, torrents, now)
    plan = engine.plan(torrents, config, now, memory)
    for note in plan.notes:
        log.warning("plan.held", note=note)
    results = await executor.apply(
        plan,
        client,
        allowed_roots=config.safety.allowed_roots,
        names=engine.fetch_names(config),
        still_matches=rechecker(config, now, memory),
        dry_run=dry_run,
        should_stop=should_stop,
    )
    duration = time.monotonic() - started
    log.info(
        "poll.done",
        torrents=len(torrents),
        steps=len(plan.steps),
        held=len(plan.held),
        duration_ms=round(duration * 1000),
        dry_run=dry_run,
    )
    return PollResult(len(torrents), plan, results, memory, duration)
