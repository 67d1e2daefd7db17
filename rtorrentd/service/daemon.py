"""The daemon process: its signals, sd_notify and watchdog, around the fleet.

`serve` runs the fleet (one task per instance, `service.fleet`, each instance's
loop in `service.instance`), the signal receiver and the watchdog pinger in one
task group. Signals are requests that every instance takes up between its polls.

- SIGHUP: reload every instance's file; a valid one replaces that instance's
  configuration (`config.reloaded`, with what changed), an invalid one is ignored
  (`config.rejected`), the others go on. Read in a worker thread, so the loop (and
  its watchdog pings) goes on.
- SIGUSR1: every instance polls now (or right after the poll that is running).
- SIGTERM, SIGINT: stop. A step that has begun is finished, no other begins (the
  executor asks `should_stop` between steps): no torrent is left with its files
  deleted but not erased. Each poll is shielded from cancellation; its own
  deadline, `STOP_GRACE` after the signal, ends it if rtorrent hangs. A second
  stop signal exits at once, with status 1; only a deletion that is unlinking
  (in a worker thread, which cannot be stopped half-way) is let finish, and the
  daemon exits right after its step's outcome is logged.
- sd_notify: READY=1 once every instance's first poll attempt ended (at most
  `READY_WAIT` after start), STATUS= after each poll, RELOADING=1 and READY=1
  around a reload, STOPPING=1 on a stop signal. WATCHDOG=1 comes from a task of
  the loop itself, so a blocked loop stops pinging; so does the fleet once every
  instance has a poll stuck `HANG_MARGIN` past its own deadline (where
  cancellation cannot reach, a thread).
- SIGCHLD, only as PID 1 (a container's init): reap the orphans given to it
  (`service.reaper`); anywhere else the daemon has no children to wait for.
- The cyclic garbage collector runs less often than Python's default
  (`tune_collector`): a poll's objects are freed by reference counting.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import AsyncIterator

import anyio
from anyio.abc import TaskGroup

from rtorrentd import __version__
from rtorrentd.config.instances import Instances
from rtorrentd.logger import get_logger
from rtorrentd.redact import redact_url
from rtorrentd.service.fleet import Fleet, TransportFor
from rtorrentd.service.instance import Observer, retry_base
from rtorrentd.service.lifecycle import EXIT_OK, Lifecycle
from rtorrentd.service.notices import Sender
from rtorrentd.service.reaper import is_init, reap
from rtorrentd.service.systemd import Notifier

log = get_logger("rtorrentd.service.daemon")

FLUSH_WAIT = 1.5  # seconds, at a stop, for the last messages to go (exit within 10 s)

# The cyclic collector's thresholds for the daemon (Python's: 700, 10, 10). A poll
# allocates a snapshot's worth of objects (a Torrent, a step, their tuples per
# torrent), which live until the next poll replaces them and are then freed by
# reference counting: polls leave no cycles (bench/scale.py's driver found none
# in ten polls), so the collector walks them without freeing anything. With the
# defaults it took 17-20 ms of a 10,000-torrent poll's ~90 ms CPU and ~450 ms of
# a 100,000-torrent poll's 1.5 s, most of it whole-heap collections (every few
# polls at 10,000, every poll at 100,000). Young collections every 10,000
# allocations (short-lived objects, a reply chunk's rows, die before one) and a
# whole-heap one every 100 of the middle generation's: cycles made by errors are
# still collected young, and a poll's leftovers at most 100 times later.
COLLECTOR_THRESHOLDS = (10_000, 10, 100)


def tune_collector() -> None:
    """Set the cyclic collector's thresholds for polling (`COLLECTOR_THRESHOLDS`)."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
INIT_SIGNALS = (signal.SIGCHLD,)  # as PID 1 only: orphans to reap


class Daemon:
    """The process around the fleet: signals in, sd_notify out."""

    def __init__(
        self,
        fleet: Fleet,
        notifier: Notifier,
        lifecycle: Lifecycle,
        outbox: Sender | None = None,
    ) -> None:
        self.fleet, self.notifier, self.lifecycle = fleet, notifier, lifecycle
        self.outbox = outbox
        self.tasks: TaskGroup | None = None

    async def receive_signals(self, signals: AsyncIterator[signal.Signals]) -> None:
        """Turn signals into requests that the instances take up between polls."""
        async for signum in signals:
            self.on_signal(signal.Signals(signum))

    def on_signal(self, signum: signal.Signals) -> None:
        """Carry out or pass on what `signum` asks for."""
        if signum in STOP_SIGNALS:
            self.stop(signum)
        elif signum == signal.SIGHUP and self.tasks is not None:
            self.tasks.start_soon(self.fleet.reload)
        elif signum == signal.SIGUSR1:
            self.fleet.request_poll()
        elif signum == signal.SIGCHLD:
            reap()

    def stop(self, signum: signal.Signals) -> None:
        """First stop signal: finish the steps in hand, then exit. Second: exit now,
        or once the deletion that is unlinking has its outcome logged."""
        if self.lifecycle.stopping:
            deleting = self.lifecycle.unlinks > 0
            log.warning("daemon.stopping", signal=signum.name, immediate=True, deleting=deleting)
            self.lifecycle.force()
            return
        self.lifecycle.stopping = True
        running = any(i.poll_scope is not None for i in self.fleet.members.values())
        log.info("daemon.stopping", signal=signum.name, immediate=False, poll_running=running)
        self.notifier.stopping()
        self.fleet.stop_soon()

    async def announce_ready(self) -> None:
        """READY=1 once every instance has tried its first poll (or after `READY_WAIT`)."""
        await self.fleet.wait_first_polls()
        if not self.lifecycle.stopping:
            self.notifier.ready()

    async def ping_watchdog(self) -> None:
        """WATCHDOG=1 every half timeout, from the loop itself, while it is healthy."""
        every = self.notifier.watchdog_interval()
        if every is None:
            return
        warned = False
        while True:
            if self.fleet.healthy():
                self.notifier.watchdog()
                warned = False
            elif not warned:
                warned = True
                log.error("watchdog.withheld", reason="a poll is stuck past its deadline")
            await anyio.sleep(every)

    async def run(self, signals: AsyncIterator[signal.Signals]) -> None:
        """The fleet until it has stopped, with the signal, ready and watchdog tasks."""
        async with anyio.create_task_group() as tasks:
            self.tasks = tasks
            tasks.start_soon(self.receive_signals, signals)
            tasks.start_soon(self.ping_watchdog)
            tasks.start_soon(self.announce_ready)
            if self.outbox is not None:
                tasks.start_soon(self.outbox.run)
            await self.fleet.run()
            if self.outbox is not None and not self.lifecycle.forced:
                await self.outbox.flush(FLUSH_WAIT)
            tasks.cancel_scope.cancel()


async def serve(
    instances: Instances,
    force_dry_run: bool,
    transport_for: TransportFor,
    *,
    notifier: Notifier | None = None,
    base: float | None = None,
    observer: Observer | None = None,
    outbox: Sender | None = None,
) -> int:
    """Run until SIGTERM/SIGINT: poll every interval, reload on SIGHUP, poll now on SIGUSR1.

    `force_dry_run` (`--dry-run`) holds for every configuration, the reloaded ones
    too. `transport_for` opens the transport a configuration names (at start and on
    each reload; a `ConfigError` from it rejects a reload). `notifier` defaults to
    the environment's, `base` (the first retry delay) to `retry_base(os.environ)`;
    `observer` hears of every poll (the metrics); `outbox` sends `[notify]`'s
    messages (`service.notify`), in a task of its own. Returns the exit status.
    """
    tune_collector()
    notifier = notifier or Notifier.from_env()
    lifecycle = Lifecycle()
    fleet = Fleet(
        instances,
        force_dry_run,
        transport_for,
        notifier=notifier,
        lifecycle=lifecycle,
        base=base or retry_base(os.environ),
        observer=observer,
        outbox=outbox,
    )
    daemon = Daemon(fleet, notifier, lifecycle, outbox)
    configs = list(instances.configs.values())
    init = is_init()
    # Entered before READY and held until exit: leaving it restores the default
    # actions, and a SIGHUP would then kill the daemon. (As PID 1, a signal with
    # the default action is dropped instead: only these handlers make it stop.)
    with anyio.open_signal_receiver(*SIGNALS, *(INIT_SIGNALS if init else ())) as signals:
        if init:
            reap()  # whatever exited before the SIGCHLD handler was there
        log.info(
            "daemon.started",
            version=__version__,
            config=instances.path,
            instances=list(instances.configs),
            dry_run=force_dry_run or all(c.daemon.dry_run for c in configs),
            rules=sum(len(c.rules) for c in configs),
            pid=os.getpid(),
        )
        urls = ", ".join(redact_url(c.rtorrent.url) for c in configs[:3])
        more = f" and {len(configs) - 3} more" if len(configs) > 3 else ""
        notifier.status(f"starting: first poll of {urls}{more}")
        await daemon.run(signals)
    log.info("daemon.stopped")
    return EXIT_OK
