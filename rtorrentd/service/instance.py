"""One instance: the loop around `poll.poll_once` for one rtorrent.

Each instance has its own schedule, backoff, memory and client, and runs in its
own task, whose log events carry `instance=` (bound in the task's context, which
its worker threads inherit): one slow or unreachable rtorrent delays no other.

- Schedule: the first poll at once, then one per `[daemon] interval` from the start
  of the previous one; a poll that overruns delays the next; polls never overlap.
- rtorrent unreachable or answering nonsense: `rtorrent.unreachable` once, retries
  after `backoff_delays` (5 s doubling up to the interval; `$RTORRENTD_BACKOFF_BASE`
  shortens the first, for tests), `rtorrent.recovered` when a poll works again.
  Other errors are logged (`poll.failed`; `poll.crashed` with the traceback).
- A reload hands the instance a new configuration (`offer`); it takes it between
  polls (`config.reloaded`, with what changed).
- A stop (the shared `Lifecycle`): a step that has begun is finished, no other
  begins. The poll is shielded from cancellation; its own deadline, `STOP_GRACE`
  after the stop, ends it if rtorrent hangs.
- Orphan cleanup (`[orphans]`): after a poll that worked, at most every
  `[orphans] interval`, under the same deadline and stop rules as a poll
  (`service.orphans`); every other instance of the daemon counts (`peers`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import anyio
import structlog

from rtorrentd.config.model import Config
from rtorrentd.deletion import preflight
from rtorrentd.deletion.journal import Journal, default_directory
from rtorrentd.deletion.peers import Membership, Peers, root_devices
from rtorrentd.engine.memory import Memory
from rtorrentd.errors import RpcError, RtorrentdError, TransportError
from rtorrentd.logger import get_logger
from rtorrentd.redact import redact_url
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.service.lifecycle import Lifecycle
from rtorrentd.service.notices import Notices
from rtorrentd.service.orphans import (
    NO_BIN,
    ClientFor,
    bin_mover,
    scan_and_clean,
    sources_for,
)
from rtorrentd.service.poll import PollResult, poll_once
from rtorrentd.service.report import human_duration
from rtorrentd.service.status import (
    clock,
    config_changes,
    short_reason,
    status_after_poll,
    status_unreachable,
)

log = get_logger("rtorrentd.service.instance")

RETRY_BASE = 5.0  # seconds before the first retry once rtorrent is unreachable
RETRY_BASE_ENV = "RTORRENTD_BACKOFF_BASE"  # overrides RETRY_BASE; for tests
STOP_GRACE = 8.0  # a poll running at a stop signal gets this long: exit within 10 s
HANG_MARGIN = 60.0  # a poll this long past its deadline is stuck


def backoff_delays(base: float, limit: float, factor: float = 2.0) -> Iterator[float]:
    """Seconds to wait before each retry: `base`, `base*factor`, ... never over `limit`."""
    delay = min(base, limit)
    while True:
        yield delay
        delay = min(delay * factor, limit)


def retry_base(env: Mapping[str, str]) -> float:
    """The first retry delay: `$RTORRENTD_BACKOFF_BASE` if a positive number, else 5 s."""
    try:
        base = float(env.get(RETRY_BASE_ENV, ""))
    except ValueError:
        return RETRY_BASE
    return base if math.isfinite(base) and base > 0 else RETRY_BASE


def journal_for(config: Config, name: str | None, env: Mapping[str, str] = os.environ) -> Journal:
    """The record of deletions under way: `[daemon] state_dir` or the default;
    for an instance of a directory (`name`), its own subdirectory there, since
    each instance finishes every deletion its journal records."""
    base = config.daemon.state_dir or default_directory(env)
    return Journal(base if name is None else os.path.join(base, name))


@dataclass(frozen=True, slots=True)
class Outage:
    """rtorrent has been unreachable since `since` (unix seconds); `delays` paces retries."""

    since: float
    reason: str
    delays: Iterator[float]


class Observer(Protocol):
    """Told of each poll attempt (the metrics); `result` None: the poll failed."""

    def polled(self, name: str, result: PollResult | None, seconds: float, up: bool) -> None:
        """One poll attempt of instance `name` ended after `seconds`; `up`: it
        reached rtorrent."""


class Instance:
    """The state of one instance's loop; only its own task changes it."""

    def __init__(
        self,
        name: str,
        config: Config,
        client: RtorrentClient,
        *,
        lifecycle: Lifecycle,
        force_dry_run: bool,
        base: float,
        journal_name: str | None = None,
        reported: Callable[[Instance], None] = lambda _i: None,
        observer: Observer | None = None,
        peers: Callable[[], Mapping[str, Config]] = dict,
        client_for: ClientFor | None = None,
        neighbours: Peers | None = None,
        neighbour_client: Callable[[Config], RtorrentClient] | None = None,
        notices: Notices | None = None,
    ) -> None:
        self.name, self.config, self.client = name, config, client
        self.notices = notices  # `[notify]`: what to tell people, if anything
        self.lifecycle, self.force_dry_run, self.retry_base = lifecycle, force_dry_run, base
        self.reported, self.observer = reported, observer
        # The other instances of the daemon (name -> config), and how to reach one.
        self.peers, self.client_for = peers, client_for
        self.orphans_at = -math.inf  # anyio.current_time() of the next orphan scan
        self.journal_name = journal_name  # None: a single file's, the journal as before
        self.journal = journal_for(config, journal_name)
        self.memory = Memory.empty()
        # The allowed roots' filesystems at start: a root that is not that
        # filesystem later (an unmounted disk) is not deleted from.
        self.filesystems = preflight.remember(config.safety.allowed_roots)
        self.wake = anyio.Event()
        self.attempted = anyio.Event()  # the first poll attempt ended
        self.poll_requested = self.retired = False
        self.offered: tuple[Config, RtorrentClient] | None = None
        self.next_at = self.last_started = -math.inf  # anyio.current_time() clock
        self.poll_scope: anyio.CancelScope | None = None
        self.poll_started: float | None = None
        self.outage: Outage | None = None
        self.retry_in = 0.0
        self.status = "starting"
        # The daemon's instances, for one another's files (`deletion.peers`); None: alone.
        self.neighbours, self.make_neighbour_client = neighbours, neighbour_client
        self.neighbour_client: RtorrentClient | None = None
        self.join_neighbours()

    def join_neighbours(self) -> None:
        """Take (or take again, after a reload) this instance's place among the
        daemon's instances, with a client of short timeouts for the others' calls."""
        if self.neighbours is None or self.make_neighbour_client is None:
            return
        self.neighbour_client = self.make_neighbour_client(self.config)
        roots = root_devices(self.filesystems)
        self.neighbours.join(self.name, self.config, self.neighbour_client, roots)

    @property
    def member(self) -> Membership | None:
        """Whom this instance publishes as; None when it runs alone."""
        return None if self.neighbours is None else Membership(self.neighbours, self.name)

    @property
    def dry_run(self) -> bool:
        """`--dry-run` or the configuration's `dry_run`."""
        return self.force_dry_run or self.config.daemon.dry_run

    @property
    def poll_timeout(self) -> float:
        """A poll's own deadline: generous, since each call has its own timeout too."""
        return 2 * self.config.daemon.interval + self.config.rtorrent.timeout

    # --- requests from the daemon, between polls --------------------------------

    def request_poll(self) -> None:
        """Poll now, or right after the poll that is running (SIGUSR1)."""
        self.poll_requested = True
        self.wake.set()

    def offer(self, config: Config, client: RtorrentClient) -> None:
        """A reloaded configuration, taken up between polls."""
        self.offered = (config, client)
        self.wake.set()

    def retire(self) -> None:
        """End the loop after the poll under way (its file was removed)."""
        self.retired = True
        self.wake.set()

    def stop_soon(self) -> None:
        """A stop: a poll under way gets `STOP_GRACE` more at most; wake the loop."""
        if self.poll_scope is not None:
            grace = anyio.current_time() + STOP_GRACE
            self.poll_scope.deadline = min(self.poll_scope.deadline, grace)
        self.wake.set()

    # --- the loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Poll on schedule until stopped or retired; reloads happen between polls."""
        structlog.contextvars.bind_contextvars(instance=self.name)
        try:
            await self._loop()
        finally:
            self.attempted.set()  # a stop before the first poll: nothing to wait for
            if self.neighbours is not None and self.neighbour_client is not None:
                self.neighbours.leave(self.name, self.neighbour_client)
            await self.client.transport.aclose()
            if self.neighbour_client is not None:
                await self.neighbour_client.transport.aclose()

    async def _loop(self) -> None:
        while True:
            # A fresh event before looking at the flags: a request from here on
            # sets it, so the wait below cannot miss one.
            self.wake = anyio.Event()
            if self.lifecycle.stopping or self.retired:
                return
            if self.offered is not None:
                await self.swap(*self.offered)
            if self.poll_requested or anyio.current_time() >= self.next_at:
                self.poll_requested = False
                await self.poll()
                continue
            with anyio.move_on_after(self.next_at - anyio.current_time()):
                await self.wake.wait()

    async def poll(self) -> None:
        """One poll attempt, shielded and under its own deadline; then the schedule."""
        started, now = anyio.current_time(), time.time()
        self.last_started = self.poll_started = started
        with anyio.CancelScope(shield=True, deadline=started + self.poll_timeout) as scope:
            self.poll_scope = scope
            result = await self.attempt(now)
        self.poll_scope = self.poll_started = None
        if scope.cancelled_caught:
            log.error("poll.timeout", seconds=round(anyio.current_time() - started, 1))
            if self.neighbours is not None:
                self.neighbours.down(self.name, "its poll did not end within its deadline")
        if self.observer is not None:
            seconds = anyio.current_time() - started
            self.observer.polled(self.name, result, seconds, self.outage is None)
        self.lifecycle.exit_if_forced()
        if self.lifecycle.stopping:
            return
        self.schedule(started)
        self.status = self.status_text(result, now)
        self.reported(self)
        self.attempted.set()
        due = self.config.orphans is not None and anyio.current_time() >= self.orphans_at
        if result is not None and due:
            await self.clean_orphans()

    async def clean_orphans(self) -> None:
        """One orphan scan and its moves (a dry run only logs them), shielded and
        under a poll's deadline; every error is logged, none ends the loop."""
        settings = self.config.orphans
        if settings is None:
            return
        started = anyio.current_time()
        self.orphans_at = started + settings.interval
        sources = sources_for(
            self.name, self.config, self.client, peers=self.peers(), client_for=self.client_for
        )
        move = None if self.dry_run else bin_mover(self.config)
        if move is None and not self.dry_run:
            log.warning("orphans.refused", reason=NO_BIN)
            return
        with anyio.CancelScope(shield=True, deadline=started + self.poll_timeout) as scope:
            # A stop shortens it as it does a poll's; `healthy` watches it too.
            self.poll_scope, self.poll_started = scope, started
            try:
                await scan_and_clean(
                    sources,
                    self.config,
                    settings,
                    now=time.time(),
                    move=move,
                    filesystems=self.filesystems,
                    should_stop=self.lifecycle.is_stopping,
                )
            except Exception as exc:  # a bug must not end the daemon either
                log.exception("orphans.crashed", error=str(exc))
            finally:
                for source in sources[1:]:
                    await source.client.transport.aclose()
        self.poll_scope = self.poll_started = None
        if scope.cancelled_caught:
            log.error("orphans.timeout", seconds=round(anyio.current_time() - started, 1))

    async def attempt(self, now: float) -> PollResult | None:
        """`poll_once`, with every error a later poll could survive logged, not raised."""
        try:
            result = await poll_once(
                self.client,
                self.config,
                self.memory,
                dry_run=self.dry_run,
                now=now,
                should_stop=self.lifecycle.is_stopping,
                unlinking=self.lifecycle.unlinking,
                filesystems=self.filesystems,
                journal=self.journal,
                member=self.member,
            )
        except (TransportError, RpcError) as exc:
            self.unreachable(exc, now)
            if self.neighbours is not None:
                self.neighbours.down(self.name, short_reason(exc))
            return None
        except RtorrentdError as exc:
            log.error("poll.failed", error=str(exc), error_type=type(exc).__name__)
            return None
        except Exception:  # a bug: the next poll may well work, the daemon must go on
            log.exception("poll.crashed")
            return None
        self.recovered(now)
        self.memory = result.memory
        if self.notices is not None:
            self.notices.polled(result, self.dry_run)
        return result

    def unreachable(self, exc: RtorrentdError, now: float) -> None:
        """Enter (or stay in) the outage: log on entry only, draw the next delay."""
        if self.outage is None:
            delays = backoff_delays(self.retry_base, self.config.daemon.interval)
            self.outage = Outage(now, short_reason(exc), delays)
            self.retry_in = next(delays)
            log.warning(
                "rtorrent.unreachable",
                url=self.config.rtorrent.url,
                error=str(exc),
                error_type=type(exc).__name__,
                retry_in=self.retry_in,
            )
            if self.notices is not None:
                url = redact_url(self.config.rtorrent.url)
                self.notices.unreachable(url, self.outage.reason)
            return
        self.outage = replace(self.outage, reason=short_reason(exc))
        self.retry_in = next(self.outage.delays)
        log.debug("rtorrent.retry", error=str(exc), retry_in=self.retry_in)

    def recovered(self, now: float) -> None:
        """Leave the outage, if there was one."""
        if self.outage is not None:
            down = human_duration(now - self.outage.since)
            log.info("rtorrent.recovered", url=self.config.rtorrent.url, down_for=down)
            self.outage = None
            if self.notices is not None:
                self.notices.recovered(redact_url(self.config.rtorrent.url), down)

    def schedule(self, started: float) -> None:
        """When the next poll is due: a retry after the backoff, else one interval on."""
        finished, interval = anyio.current_time(), self.config.daemon.interval
        if self.outage is not None:
            self.next_at = finished + self.retry_in
            return
        self.next_at = max(started + interval, finished)
        if finished - started > interval:
            log.warning("poll.overran", seconds=round(finished - started, 1), interval=interval)

    def status_text(self, result: PollResult | None, now: float) -> str:
        """For `systemctl status`: what the poll did, or why it did nothing."""
        next_wall = now + max(0.0, self.next_at - anyio.current_time())
        if self.outage is not None:
            return status_unreachable(self.outage.since, self.outage.reason, self.retry_in)
        if result is not None:
            return status_after_poll(result, at=now, next_at=next_wall)
        return f"poll at {clock(now)} failed (see the log), next {clock(next_wall)}"

    async def swap(self, config: Config, client: RtorrentClient) -> None:
        """Put `config` (and its client) in place; the schedule takes the new interval."""
        self.offered = None
        changes = config_changes(self.config, config)
        old_client, self.client, self.config = self.client, client, config
        self.filesystems = preflight.remember(config.safety.allowed_roots, self.filesystems)
        self.journal = journal_for(config, self.journal_name)
        old_neighbour_client = self.neighbour_client
        self.join_neighbours()
        await old_client.transport.aclose()
        if old_neighbour_client is not None:
            await old_neighbour_client.transport.aclose()
        if self.outage is None:
            self.next_at = self.last_started + config.daemon.interval
        fields = changes or {"unchanged": True}
        log.info("config.reloaded", config=config.source, rules=len(config.rules), **fields)

    def healthy(self) -> bool:
        """False once a poll has outlived its own deadline by `HANG_MARGIN`."""
        started = self.poll_started
        limit = self.poll_timeout + HANG_MARGIN
        return started is None or anyio.current_time() - started < limit
