"""The instances of one daemon, each in its own task; reloads across them.

`-c FILE` runs one instance, `-c DIR` one per `DIR/*.toml` (`config.instances`).
The fleet starts a task per instance and answers for all of them to the daemon:
poll now, stop, reload, readiness, health, and the STATUS= line.

A reload reads every file again (in a worker thread). Each valid file is offered
to its instance, which takes it between its polls; a broken one is rejected on
its own (`config.rejected` with `instance=`), its instance keeping what it had.
A new file starts a new instance (`instance.added`), a removed one ends its
instance after the poll under way (`instance.removed`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anyio
from anyio.abc import TaskGroup

from rtorrentd.config.instances import (
    Instances,
    Loaded,
    daemon_metrics,
    daemon_notify,
    read_each,
)
from rtorrentd.config.model import Config
from rtorrentd.deletion.peers import Peers, peer_config
from rtorrentd.errors import RtorrentdError
from rtorrentd.logger import get_logger
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import Transport
from rtorrentd.service.instance import Instance, Observer
from rtorrentd.service.lifecycle import Lifecycle
from rtorrentd.service.notices import Notices, Outbox
from rtorrentd.service.status import fleet_status
from rtorrentd.service.systemd import Notifier, monotonic_usec

log = get_logger("rtorrentd.service.fleet")

TransportFor = Callable[[Config], Transport]
READY_WAIT = 30.0  # READY=1 at the latest this long after start, slow instances or not


class Fleet:
    """The running instances by name; the daemon's tasks call it."""

    def __init__(
        self,
        instances: Instances,
        force_dry_run: bool,
        transport_for: TransportFor,
        *,
        notifier: Notifier,
        lifecycle: Lifecycle,
        base: float,
        observer: Observer | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.path, self.directory = instances.path, instances.directory
        self.metrics, self.notify, self.outbox = instances.metrics, instances.notify, outbox
        self.force_dry_run, self.transport_for = force_dry_run, transport_for
        self.notifier, self.lifecycle, self.base = notifier, lifecycle, base
        self.observer = observer
        self.reloading = anyio.Lock()
        self.tasks: TaskGroup | None = None
        # The instances of a directory know each other's torrents (`deletion.peers`).
        self.neighbours = Peers() if self.directory else None
        # Clients first, then instances: a password file that cannot be read stops
        # the start before any instance runs.
        clients = {name: self.client(c) for name, c in instances.configs.items()}
        self.members: dict[str, Instance] = {
            name: self.make(name, config, clients[name])
            for name, config in instances.configs.items()
        }

    def client(self, config: Config) -> RtorrentClient:
        """A client for `config`'s rtorrent (a new transport reads the password again)."""
        return RtorrentClient(self.transport_for(config))

    def make(self, name: str, config: Config, client: RtorrentClient) -> Instance:
        """An instance, not yet running."""
        return Instance(
            name,
            config,
            client,
            lifecycle=self.lifecycle,
            force_dry_run=self.force_dry_run,
            base=self.base,
            journal_name=name if self.directory else None,
            reported=self.report,
            observer=self.observer,
            peers=lambda: {n: i.config for n, i in self.members.items()},
            client_for=self.client,
            neighbours=self.neighbours,
            neighbour_client=self.neighbour_client,
            notices=self.notices(name),
        )

    def notices(self, name: str) -> Notices | None:
        """What instance `name` tells through `[notify]`; titles name the instance
        of a directory (a single file's needs no name)."""
        if self.notify is None or self.outbox is None:
            return None
        return Notices(name if self.directory else None, self.notify, self.outbox)

    def neighbour_client(self, config: Config) -> RtorrentClient:
        """A client for `config`'s rtorrent with short timeouts: the one the other
        instances ask it with (`deletion.peers.PEER_TIMEOUT`)."""
        return self.client(peer_config(config))

    async def run(self) -> None:
        """Run every instance until each has stopped (or been removed)."""
        async with anyio.create_task_group() as tasks:
            self.tasks = tasks
            for instance in self.members.values():
                tasks.start_soon(instance.run, name=f"instance {instance.name}")

    # --- requests for every instance -------------------------------------------------

    def request_poll(self) -> None:
        """Every instance polls now, or right after its poll under way."""
        for instance in self.members.values():
            instance.request_poll()

    def stop_soon(self) -> None:
        """A stop: every instance ends after its step under way."""
        for instance in self.members.values():
            instance.stop_soon()

    async def wait_first_polls(self, limit: float = READY_WAIT) -> None:
        """Until every instance's first poll attempt ended, or `limit` seconds."""
        with anyio.move_on_after(limit):
            for instance in list(self.members.values()):
                await instance.attempted.wait()

    def healthy(self) -> bool:
        """False when every instance has a poll stuck past its deadline: the loop
        itself can do nothing more (one stuck instance does not stop the others)."""
        return not self.members or any(i.healthy() for i in self.members.values())

    # --- STATUS= ------------------------------------------------------------------

    def report(self, instance: Instance) -> None:
        """STATUS= after `instance` polled: its line, alone for a single file."""
        if not self.directory:
            self.notifier.status(instance.status)
            return
        down = [name for name, i in self.members.items() if i.outage is not None]
        self.notifier.status(fleet_status(len(self.members), down, instance.name, instance.status))

    # --- reload -------------------------------------------------------------------

    async def reload(self) -> None:
        """Read every file again; valid ones go to their instances, broken ones are
        rejected one by one. RELOADING=1 before, READY=1 after."""
        async with self.reloading:
            self.notifier.reloading(monotonic_usec())
            try:
                # In a thread: parsing must not stall the watchdog pings
                # (load_config refuses a FIFO, which would block it for good).
                loaded = await anyio.to_thread.run_sync(read_each, self.path)
            except RtorrentdError as exc:
                log.error("config.rejected", config=self.path, error=str(exc))
            except Exception as exc:  # a parser bug must not end the daemon either
                log.exception("config.rejected", config=self.path, error=str(exc))
            else:
                self.apply(loaded)
            self.notifier.ready()

    def apply(self, loaded: Loaded) -> None:
        """Offer, start and retire instances as the files now say."""
        for name, error in loaded.errors.items():
            kept = "the previous configuration" if name in self.members else "not started"
            log.error("config.rejected", instance=name, error=str(error), kept=kept)
        for name, config in loaded.configs.items():
            try:
                client = self.client(config)
            except RtorrentdError as exc:
                log.error("config.rejected", instance=name, config=config.source, error=str(exc))
                continue
            if name in self.members:
                self.members[name].offer(config, client)
            else:
                self.add(name, config, client)
        for name in [n for n in self.members if n not in {**loaded.configs, **loaded.errors}]:
            log.info("instance.removed", instance=name)
            self.members.pop(name).retire()
        self.warn_daemon_wide(loaded.configs)

    def add(self, name: str, config: Config, client: RtorrentClient) -> None:
        """Start an instance for a new file."""
        instance = self.members[name] = self.make(name, config, client)
        log.info("instance.added", instance=name, config=config.source)
        if self.tasks is not None:
            self.tasks.start_soon(instance.run, name=f"instance {name}")

    def warn_daemon_wide(self, configs: Mapping[str, Config]) -> None:
        """`[metrics]` and `[notify]` are read at start only: say so when a reload
        changed them."""
        if daemon_metrics(configs) != self.metrics:
            log.warning("metrics.unchanged", hint="[metrics] takes effect on a restart")
        if daemon_notify(configs) != self.notify:
            log.warning("notify.unchanged", hint="[notify] takes effect on a restart")
