"""Prometheus metrics (`[metrics]`), with the official client, `prometheus-client`.

Imported only when `[metrics]` is configured (start-up time: the library is not
small), and installed with the `metrics` extra. Every metric is named
`rtorrentd_*` and labelled by `instance`; the README lists them all ("Metrics").

- `listen`: an HTTP endpoint, `/metrics`, served by the library's own thread.
- `textfile`: after each poll, the file node_exporter's textfile collector reads,
  written whole to a temporary name beside it and renamed over it (atomic).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    write_to_textfile,
)

from rtorrentd.config.model import MetricsSettings
from rtorrentd.errors import RtorrentdError
from rtorrentd.logger import get_logger
from rtorrentd.service.poll import PollResult

log = get_logger("rtorrentd.service.metrics")

# Polls take from milliseconds (a few torrents) to minutes (a slow rtorrent).
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class MetricsError(RtorrentdError):
    """The metrics endpoint cannot listen where `[metrics] listen` says."""


class Metrics:
    """The daemon's metrics, updated after each poll of each instance (an
    `instance.Observer`)."""

    def __init__(self, settings: MetricsSettings) -> None:
        self.settings = settings
        self.registry = registry = CollectorRegistry()
        self.shutdown: Callable[[], None] = lambda: None
        # Not `instance`: Prometheus gives that label to the scrape target, and would
        # rename ours to exported_instance.
        by_instance = ["rtorrent"]
        self.torrents = Gauge(
            "rtorrentd_torrents",
            "Torrents in rtorrent at the last poll, by state",
            [*by_instance, "state"],
            registry=registry,
        )
        self.bytes = Gauge(
            "rtorrentd_torrent_bytes",
            "Total size of the torrents at the last poll, by state",
            [*by_instance, "state"],
            registry=registry,
        )
        self.steps = Counter(
            "rtorrentd_steps",
            "Steps carried out or not, by action, rule and result "
            "(done, dry-run, skipped, refused, failed)",
            [*by_instance, "action", "rule", "result"],
            registry=registry,
        )
        self.freed = Counter(
            "rtorrentd_freed_bytes",
            "Bytes freed on disk by deletions and by emptying the recycle bin",
            by_instance,
            registry=registry,
        )
        self.polls = Counter(
            "rtorrentd_polls",
            "Poll attempts, by outcome (ok, unreachable, failed)",
            [*by_instance, "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "rtorrentd_poll_duration_seconds",
            "How long each poll attempt took",
            by_instance,
            buckets=POLL_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "rtorrentd_last_successful_poll_timestamp_seconds",
            "When the last poll that worked ended (unix time)",
            by_instance,
            registry=registry,
        )
        self.up = Gauge(
            "rtorrentd_rtorrent_up",
            "1 when the last poll reached rtorrent, 0 when it could not",
            by_instance,
            registry=registry,
        )
        self.free = Gauge(
            "rtorrentd_free_bytes",
            "Free bytes on the filesystem of each space policy's path, at the last poll",
            [*by_instance, "path"],
            registry=registry,
        )

        self.trash_bytes = Gauge(
            "rtorrentd_trash_bytes",
            "Bytes of the files in the recycle bin ([trash]) after the last poll",
            by_instance,
            registry=registry,
        )
        self.trash_entries = Gauge(
            "rtorrentd_trash_entries",
            "Entries in the recycle bin ([trash]) after the last poll",
            by_instance,
            registry=registry,
        )

    def start(self) -> None:
        """Listen, if `listen` is set; raises `MetricsError` when it cannot."""
        if self.settings.listen is None:
            return
        host, port = self.settings.listen
        try:
            server, _thread = start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            where = f"{host}:{port}"
            raise MetricsError(f"[metrics] listen = {where!r}: cannot listen: {exc}") from exc
        self.shutdown = server.shutdown
        log.info("metrics.listening", host=host, port=port)

    def polled(self, name: str, result: PollResult | None, seconds: float, up: bool) -> None:
        """Record one poll attempt of instance `name`; then write the textfile."""
        self.duration.labels(name).observe(seconds)
        self.up.labels(name).set(1 if up else 0)
        outcome = "ok" if result else "failed" if up else "unreachable"
        self.polls.labels(name, outcome).inc()
        if result is not None:
            self.record(name, result)
        self.write_textfile()

    def record(self, name: str, result: PollResult) -> None:
        """What a poll that worked saw and did."""
        self.last_success.labels(name).set(time.time())
        for state, count, size in result.states:
            self.torrents.labels(name, state).set(count)
            self.bytes.labels(name, state).set(size)
        for outcome in result.results:
            step = outcome.step
            self.steps.labels(name, step.action.value, step.rule, outcome.result.value).inc()
            if outcome.freed_bytes:
                self.freed.labels(name).inc(outcome.freed_bytes)
        for path, free in result.free:
            self.free.labels(name, path).set(free)
        if result.bin is not None:
            self.trash_bytes.labels(name).set(result.bin.bytes)
            self.trash_entries.labels(name).set(result.bin.entries)
            if result.bin.freed:
                self.freed.labels(name).inc(result.bin.freed)

    def write_textfile(self) -> None:
        """The textfile, replaced whole (a temporary file renamed over it)."""
        path = self.settings.textfile
        if path is None:
            return
        try:
            write_to_textfile(path, self.registry)
        except OSError as exc:
            log.error("metrics.unwritable", path=path, error=str(exc))
