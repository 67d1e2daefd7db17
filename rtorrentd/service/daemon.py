"""The daemon: the loop around `poll.poll_once`, its signals, schedule and retries.

`serve` runs three tasks in one task group: the loop, the signal receiver, and the
watchdog pinger. Reloads and stops are requested by signals and carried out by the
loop between polls.

- Schedule: the first poll at once, then one per `[daemon] interval` from the start
  of the previous one; a poll that overruns delays the next; polls never overlap.
- rtorrent unreachable or answering nonsense: `rtorrent.unreachable` once, retries
  after `backoff_delays` (5 s doubling up to the interval; `$RTORRENTD_BACKOFF_BASE`
  shortens the first, for tests), `rtorrent.recovered` when a poll works again.
  Other errors are logged (`poll.failed`; `poll.crashed` with the traceback).
- SIGHUP: reload; a valid file replaces the configuration (`config.reloaded`, with
  what changed), an invalid one is ignored (`config.rejected`). The file is read
  and parsed in a worker thread, so the loop (and its watchdog pings) goes on.
- SIGUSR1: poll now (or right after the poll that is running).
- SIGTERM, SIGINT: stop. A step that has begun is finished, no other begins (the
  executor asks `should_stop` between steps): no torrent is left with its files
  deleted but not erased. The poll is shielded from cancellation; its own
  deadline, `STOP_GRACE` after the signal, ends it if rtorrent hangs. A second
  stop signal exits at once, with status 1; only a deletion that is unlinking
  (in a worker thread, which cannot be stopped half-way) is let finish, and the
  daemon exits right after its step's outcome is logged.
- sd_notify: READY=1 after the first poll attempt, STATUS= after each, RELOADING=1
  and READY=1 around a reload, STOPPING=1 on a stop signal. WATCHDOG=1 comes from a
  task of the loop itself, so a blocked loop stops pinging; so does a poll stuck
  `HANG_MARGIN` past its own deadline (where cancellation cannot reach, a thread).
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

import anyio
import structlog

from rtorrentd import __version__
from rtorrentd.config.load import load_config
from rtorrentd.config.model import Config
from rtorrentd.deletion import preflight
from rtorrentd.deletion.journal import Journal, default_directory
from rtorrentd.engine.memory import Memory
from rtorrentd.errors import RpcError, RtorrentdError, TransportError
from rtorrentd.redact import redact_url
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import Transport
from rtorrentd.service.poll import PollResult, poll_once
from rtorrentd.service.report import human_duration
from rtorrentd.service.status import (
    clock,
    config_changes,
    short_reason,
    status_after_poll,
    status_unreachable,
)
from rtorrentd.service.systemd import Notifier, monotonic_usec

log = structlog.get_logger("rtorrentd.service.daemon")

RETRY_BASE = 5.0  # seconds before the first retry once rtorrent is unreachable
RETRY_BASE_ENV = "RTORRENTD_BACKOFF_BASE"  # overrides RETRY_BASE; for tests
STOP_GRACE = 8.0  # a poll running at a stop signal gets this long: exit within 10 s
HANG_MARGIN = 60.0  # a poll this long past its deadline is stuck: stop the watchdog
SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
EXIT_OK, EXIT_FORCED = 0, 1
TransportFor = Callable[[Config], Transport]


# --- retries ----------------------------------------------------------------------


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


# --- the loop ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outage:
    """rtorrent has been unreachable since `since` (unix seconds); `delays` paces retries."""

    since: float
    reason: str
    delays: Iterator[float]


class Daemon:
    """The state of a running daemon; only the loop's own tasks touch it."""

    def __init__(
        self,
        path: str,
        config: Config,
        force_dry_run: bool,
        transport_for: TransportFor,
        *,
        notifier: Notifier,
        base: float,
    ) -> None:
        self.path, self.config, self.force_dry_run = path, config, force_dry_run
        self.transport_for, self.notifier, self.retry_base = transport_for, notifier, base
        self.client = RtorrentClient(transport_for(config))
        self.memory = Memory.empty()
        # The allowed roots' filesystems at start: a root that is not that
        # filesystem later (an unmounted disk) is not deleted from.
        self.filesystems = preflight.remember(config.safety.allowed_roots)
        self.journal = Journal(config.daemon.state_dir or default_directory(os.environ))
        self.wake = anyio.Event()
        self.stopping = self.reload_requested = self.poll_requested = self.ready = False
        self.forced = False  # a second stop signal came while a deletion was unlinking
        self.unlinks = 0  # deletions between their first unlink and their outcome
        self.next_at = self.last_started = -math.inf  # anyio.current_time() clock
        self.poll_scope: anyio.CancelScope | None = None
        self.poll_started: float | None = None
        self.outage: Outage | None = None
        self.retry_in = 0.0

    def is_stopping(self) -> bool:
        """Whether a stop signal has come (the executor asks before each step, so
        after the previous step was logged: the moment a deferred forced exit waits for)."""
        self.exit_if_forced()
        return self.stopping

    @contextmanager
    def unlinking(self) -> Iterator[None]:
        """Held while a deletion unlinks and erases: a second stop signal waits."""
        self.unlinks += 1
        try:
            yield
        finally:
            self.unlinks -= 1

    def exit_if_forced(self) -> None:
        """Exit now if a second stop signal came and no deletion is unlinking."""
        if self.forced and not self.unlinks:
            os._exit(EXIT_FORCED)

    @property
    def dry_run(self) -> bool:
        """`--dry-run` or the configuration's `dry_run`."""
        return self.force_dry_run or self.config.daemon.dry_run

    @property
    def poll_timeout(self) -> float:
        """A poll's own deadline: generous, since each call has its own timeout too."""
        return 2 * self.config.daemon.interval + self.config.rtorrent.timeout

    async def run(self) -> None:
        """Poll on schedule until stopped; reloads and stops happen between polls."""
        while True:
            # A fresh event before looking at the flags: a signal from here on sets
            # it, so the wait below cannot miss one.
            self.wake = anyio.Event()
            if self.stopping:
                return
            if self.reload_requested:
                await self.reload()
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
        self.exit_if_forced()
        if self.stopping:
            return
        self.schedule(started)
        self.report(result, now)
        if not self.ready:
            self.ready = True
            self.notifier.ready()

    async def attempt(self, now: float) -> PollResult | None:
        """`poll_once`, with every error a later poll could survive logged, not raised."""
        try:
            result = await poll_once(
                self.client,
                self.config,
                self.memory,
                dry_run=self.dry_run,
                now=now,
                should_stop=self.is_stopping,
                unlinking=self.unlinking,
                filesystems=self.filesystems,
                journal=self.journal,
            )
        except (TransportError, RpcError) as exc:
            self.unreachable(exc, now)
            return None
        except RtorrentdError as exc:
            log.error("poll.failed", error=str(exc), error_type=type(exc).__name__)
            return None
        except Exception:  # a bug: the next poll may well work, the daemon must go on
            log.exception("poll.crashed")
            return None
        self.recovered(now)
        self.memory = result.memory
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

    def schedule(self, started: float) -> None:
        """When the next poll is due: a retry after the backoff, else one interval on."""
        finished, interval = anyio.current_time(), self.config.daemon.interval
        if self.outage is not None:
            self.next_at = finished + self.retry_in
            return
        self.next_at = max(started + interval, finished)
        if finished - started > interval:
            log.warning("poll.overran", seconds=round(finished - started, 1), interval=interval)

    def report(self, result: PollResult | None, now: float) -> None:
        """STATUS= for `systemctl status`: what the poll did, or why it did nothing."""
        next_wall = now + max(0.0, self.next_at - anyio.current_time())
        if self.outage is not None:
            text = status_unreachable(self.outage.since, self.outage.reason, self.retry_in)
        elif result is not None:
            text = status_after_poll(result, at=now, next_at=next_wall)
        else:
            text = f"poll at {clock(now)} failed (see the log), next {clock(next_wall)}"
        self.notifier.status(text)

    async def reload(self) -> None:
        """Read the configuration again; a valid one is swapped in, any other kept out."""
        self.reload_requested = False
        self.notifier.reloading(monotonic_usec())
        try:
            # In a thread: parsing a large file must not stall the watchdog pings
            # (load_config itself refuses a FIFO, which would block it for good).
            config = await anyio.to_thread.run_sync(load_config, self.path)
            # A new transport every time: it reads the password file again.
            client = RtorrentClient(self.transport_for(config))
        except RtorrentdError as exc:
            log.error("config.rejected", config=self.path, error=str(exc))
        except Exception as exc:  # a parser bug must not end the daemon either
            log.exception("config.rejected", config=self.path, error=str(exc))
        else:
            await self.swap(config, client)
        self.notifier.ready()

    async def swap(self, config: Config, client: RtorrentClient) -> None:
        """Put `config` (and its client) in place; the schedule takes the new interval."""
        changes = config_changes(self.config, config)
        old_client, self.client, self.config = self.client, client, config
        self.filesystems = preflight.remember(config.safety.allowed_roots, self.filesystems)
        self.journal = Journal(config.daemon.state_dir or default_directory(os.environ))
        await old_client.transport.aclose()
        if self.outage is None:
            self.next_at = self.last_started + config.daemon.interval
        fields = changes or {"unchanged": True}
        log.info("config.reloaded", config=self.path, rules=len(config.rules), **fields)

    async def receive_signals(self, signals: AsyncIterator[signal.Signals]) -> None:
        """Turn signals into requests that the loop takes up between polls."""
        async for signum in signals:
            self.on_signal(signal.Signals(signum))

    def on_signal(self, signum: signal.Signals) -> None:
        """Record what `signum` asks for and wake the loop."""
        if signum in STOP_SIGNALS:
            self.stop(signum)
        elif signum == signal.SIGHUP:
            self.reload_requested = True
        elif signum == signal.SIGUSR1:
            self.poll_requested = True
        self.wake.set()

    def stop(self, signum: signal.Signals) -> None:
        """First stop signal: finish the step in hand, then exit. Second: exit now,
        or once the deletion that is unlinking has its outcome logged."""
        if self.stopping:
            deleting = self.unlinks > 0
            log.warning("daemon.stopping", signal=signum.name, immediate=True, deleting=deleting)
            self.forced = True
            self.exit_if_forced()
            return
        self.stopping = True
        running = self.poll_scope is not None
        log.info("daemon.stopping", signal=signum.name, immediate=False, poll_running=running)
        self.notifier.stopping()
        if self.poll_scope is not None:
            grace = anyio.current_time() + STOP_GRACE
            self.poll_scope.deadline = min(self.poll_scope.deadline, grace)

    def healthy(self) -> bool:
        """False once a poll has outlived its own deadline by `HANG_MARGIN`."""
        started = self.poll_started
        limit = self.poll_timeout + HANG_MARGIN
        return started is None or anyio.current_time() - started < limit

    async def ping_watchdog(self) -> None:
        """WATCHDOG=1 every half timeout, from the loop itself, while it is healthy."""
        every = self.notifier.watchdog_interval()
        if every is None:
            return
        warned = False
        while True:
            if self.healthy():
                self.notifier.watchdog()
                warned = False
            elif not warned:
                warned = True
                log.error("watchdog.withheld", reason="a poll is stuck past its deadline")
            await anyio.sleep(every)


async def serve(
    config_path: str,
    config: Config,
    force_dry_run: bool,
    transport_for: TransportFor,
    *,
    notifier: Notifier | None = None,
    base: float | None = None,
) -> int:
    """Run until SIGTERM/SIGINT: poll every interval, reload on SIGHUP, poll now on SIGUSR1.

    `force_dry_run` (`--dry-run`) holds for every configuration, the reloaded ones
    too. `transport_for` opens the transport a configuration names (at start and on
    each reload; a `ConfigError` from it rejects a reload). `notifier` defaults to
    the environment's, `base` (the first retry delay) to `retry_base(os.environ)`.
    Returns the exit status.
    """
    notifier = notifier or Notifier.from_env()
    base = base or retry_base(os.environ)
    daemon = Daemon(config_path, config, force_dry_run, transport_for, notifier=notifier, base=base)
    # Entered before READY and held until exit: leaving it restores the default
    # actions, and a SIGHUP would then kill the daemon.
    with anyio.open_signal_receiver(*SIGNALS) as signals:
        log.info(
            "daemon.started",
            version=__version__,
            config=config_path,
            dry_run=daemon.dry_run,
            rules=len(config.rules),
            url=config.rtorrent.url,
            pid=os.getpid(),
        )
        notifier.status(f"starting: first poll of {redact_url(config.rtorrent.url)}")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(daemon.receive_signals, signals)
            tasks.start_soon(daemon.ping_watchdog)
            await daemon.run()
            tasks.cancel_scope.cancel()
        await daemon.client.transport.aclose()
    log.info("daemon.stopped")
    return EXIT_OK
