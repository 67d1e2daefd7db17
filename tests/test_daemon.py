"""`rtorrentd run`: the loop, as systemd runs it, against a real rtorrent.

The integration tests start the daemon as a subprocess with JSON logs, a notify
socket of their own (an abstract AF_UNIX name: no path-length trouble) and a
watchdog, and synchronise on what it says: log lines and notify datagrams, each
awaited with a deadline. `SIGUSR1` ("poll now") gives them a second poll without
waiting out the 10 s minimum interval, and `$RTORRENTD_BACKOFF_BASE` shortens
the first retry after rtorrent went away.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from harness import RtorrentProcess, TorrentFactory, TorrentFile, random_bytes
from structlog.testing import capture_logs

from rtorrentd.config.instances import Instances
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Action
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine.memory import Memory
from rtorrentd.engine.plan import Decision, Plan, Step
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service import instance
from rtorrentd.service.daemon import COLLECTOR_THRESHOLDS, Daemon, serve
from rtorrentd.service.fleet import Fleet
from rtorrentd.service.instance import Instance, backoff_delays, retry_base
from rtorrentd.service.lifecycle import EXIT_FORCED, EXIT_OK, Lifecycle
from rtorrentd.service.poll import PollResult
from rtorrentd.service.status import config_changes, status_after_poll, status_unreachable
from rtorrentd.service.systemd import Notifier

REPO = Path(__file__).resolve().parent.parent
WAIT = 20.0  # seconds: generous, a loaded 2-core CI machine is slow; waits end early
CLOCK = r"\d\d:\d\d"


# --- pure parts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "limit", "expected"),
    [
        (5.0, 300.0, [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]),
        (5.0, 10.0, [5.0, 10.0, 10.0, 10.0]),
        (0.2, 1.0, [0.2, 0.4, 0.8, 1.0, 1.0]),
        (20.0, 10.0, [10.0, 10.0]),
    ],
)
def test_backoff_delays(base: float, limit: float, expected: list[float]) -> None:
    delays = backoff_delays(base, limit)
    assert expected == [next(delays) for _ in expected]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 5.0),
        ({"RTORRENTD_BACKOFF_BASE": "0.2"}, 0.2),
        ({"RTORRENTD_BACKOFF_BASE": "soon"}, 5.0),
        ({"RTORRENTD_BACKOFF_BASE": "0"}, 5.0),
        ({"RTORRENTD_BACKOFF_BASE": "-1"}, 5.0),
        ({"RTORRENTD_BACKOFF_BASE": "nan"}, 5.0),
        ({"RTORRENTD_BACKOFF_BASE": "inf"}, 5.0),
    ],
)
def test_retry_base(env: dict[str, str], expected: float) -> None:
    assert expected == retry_base(env)


def config_text(
    rules: str = "", *, url: str = "scgi:///run/rt.socket", interval: str = "5m", root: str = "/d"
) -> str:
    return (
        f'[rtorrent]\nurl = "{url}"\ntimeout = "5s"\n'
        f'[daemon]\ninterval = "{interval}"\n'
        f'[safety]\nallowed_roots = ["{root}"]\nmax_deletes_per_poll = 100\n'
        f"max_delete_fraction = 1.0\n{rules}"
    )


def rule(name: str, pattern: str, action: str = "delete") -> str:
    return f'[[rule]]\nname = "{name}"\nwhen = \'name ~ "{pattern}"\'\naction = "{action}"\n'


def test_config_changes_names_what_a_reload_changes() -> None:
    old = parse_config(config_text(rule("a", "^a") + rule("b", "^b") + rule("c", "^c")), "x")
    new = parse_config(
        config_text(
            rule("c", "^c") + rule("b", "^b2") + rule("d", "^d"),
            url="scgi://127.0.0.1:5000",
            interval="10m",
            root="/e",
        ),
        "x",
    )
    assert {
        "rules_added": ["d"],
        "rules_removed": ["a"],
        "rules_changed": ["b"],
        "rules_reordered": True,
        "interval": "5m → 10m",
        "url": "scgi:///run/rt.socket → scgi://127.0.0.1:5000",
        "also_changed": ["safety"],
    } == config_changes(old, new)


def test_config_changes_of_the_same_file_is_empty() -> None:
    # Parsed twice: new Condition objects, the same text; lines moved by a comment.
    text = config_text(rule("a", "^a"))
    assert {} == config_changes(parse_config(text, "x"), parse_config("# hi\n" + text, "x"))


def _step(action: Action, name: str = "t") -> Step:
    return Step("AB" * 20, name, Decision(action, "r", ()), (), 1000)


def _result(results: list[StepResult], held: int = 0) -> PollResult:
    steps = tuple(r.step for r in results)
    plan = Plan(steps, tuple(_step(Action.DELETE) for _ in range(held)), (), 1234, 0)
    return PollResult(1234, plan, tuple(results), Memory.empty(), 0.1)


@pytest.mark.parametrize(
    ("results", "held", "expected"),
    [
        ([], 0, "1234 torrents"),
        (
            [
                StepResult(_step(Action.DELETE), Result.DONE, freed_bytes=3 * 1024**3),
                StepResult(_step(Action.DELETE), Result.DONE, freed_bytes=1024**3),
                StepResult(_step(Action.STOP), Result.DONE),
                StepResult(_step(Action.REMOVE), Result.FAILED, "gone"),
            ],
            2,
            "1234 torrents, 2 deleted (4.0 GiB), 1 stopped, 1 failed, 2 held",
        ),
        (
            [StepResult(_step(Action.DELETE), Result.DRY_RUN, freed_bytes=10)],
            0,
            "1234 torrents, 1 planned (dry run)",
        ),
    ],
)
def test_status_after_poll(results: list[StepResult], held: int, expected: str) -> None:
    at = time.mktime((2024, 5, 1, 14, 5, 0, 0, 0, -1))
    status = status_after_poll(_result(results, held), at=at, next_at=at + 300)
    assert f"{expected} at 14:05, next 14:10" == status


def test_status_unreachable() -> None:
    since = time.mktime((2024, 5, 1, 14, 5, 0, 0, 0, -1))
    assert "rtorrent unreachable since 14:05: refused, retry in 40s" == status_unreachable(
        since, "refused", 40.0
    )
    assert status_unreachable(since, "refused", 0.2).endswith("retry in 0.2s")


# --- the loop in-process: failures are logged, never raised ----------------------


def _daemon(tmp_path: Path, url: str) -> Instance:
    config = parse_config(config_text(url=url, root=str(tmp_path)), "x")
    client = RtorrentClient(open_transport(config.rtorrent.url))
    return Instance("x", config, client, lifecycle=Lifecycle(), force_dry_run=False, base=0.2)


def _process(tmp_path: Path, url: str) -> Daemon:
    config = parse_config(config_text(url=url, root=str(tmp_path)), "x")
    lifecycle = Lifecycle()
    fleet = Fleet(
        Instances("x", False, {"x": config}, None),
        False,
        lambda c: open_transport(c.rtorrent.url),
        notifier=Notifier(),
        lifecycle=lifecycle,
        base=0.2,
    )
    return Daemon(fleet, Notifier(), lifecycle)


@pytest.mark.anyio
async def test_a_second_stop_signal_waits_only_for_a_deletion_that_is_unlinking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    d = _process(tmp_path, f"scgi://{tmp_path}/no.socket")
    d.stop(signal.SIGTERM)
    with d.lifecycle.unlinking():
        d.stop(signal.SIGINT)
        assert d.lifecycle.is_stopping()  # the executor asks between steps: none between now
        assert [] == exits
    assert [] == exits  # the step's outcome is logged next, then the executor asks
    assert d.lifecycle.is_stopping()
    assert [EXIT_FORCED] == exits

    exits.clear()
    idle = _process(tmp_path, f"scgi://{tmp_path}/no.socket")
    idle.stop(signal.SIGTERM)
    idle.stop(signal.SIGINT)
    assert [EXIT_FORCED] == exits


@pytest.mark.anyio
async def test_unreachable_is_logged_once_and_retries_back_off(tmp_path: Path) -> None:
    d = _daemon(tmp_path, f"scgi://{tmp_path}/no.socket")
    with capture_logs() as logs:
        for _ in range(3):
            assert await d.attempt(time.time()) is None
            d.schedule(0.0)
    events = [e["event"] for e in logs if e["log_level"] != "debug"]
    assert ["rtorrent.unreachable"] == events
    assert (0.8, 0.2) == (d.retry_in, logs[0]["retry_in"])
    assert d.outage is not None
    assert "SocketMissing" == logs[0]["error_type"]


@pytest.mark.anyio
async def test_an_unexpected_exception_is_logged_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> PollResult:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(instance, "poll_once", broken)
    d = _daemon(tmp_path, f"scgi://{tmp_path}/no.socket")
    with capture_logs() as logs:
        assert await d.attempt(time.time()) is None
    assert [("poll.crashed", "error")] == [(e["event"], e["log_level"]) for e in logs]
    assert logs[0]["exc_info"] is True
    assert d.outage is None


@pytest.mark.anyio
async def test_the_daemon_runs_the_cyclic_collector_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[tuple[int, ...]] = []

    async def run(_self: Daemon, _signals: object) -> None:
        during.append(gc.get_threshold())

    monkeypatch.setattr(Daemon, "run", run)
    config = parse_config(config_text(url=f"scgi://{tmp_path}/no.socket", root=str(tmp_path)), "x")
    before = gc.get_threshold()
    try:
        status = await serve(
            Instances("x", False, {"x": config}, None),
            False,
            lambda c: open_transport(c.rtorrent.url),
            notifier=Notifier(),
        )
    finally:
        gc.set_threshold(*before)
    assert (EXIT_OK, [COLLECTOR_THRESHOLDS]) == (status, during)
    young, _, whole = COLLECTOR_THRESHOLDS
    assert young > 700 and whole > 10  # Python's defaults: (700, 10, 10)


# --- the daemon as a process -----------------------------------------------------


class Feed:
    """Items arriving from a thread, each stamped with `time.monotonic()`, awaited by
    predicate from a cursor, so successive waits find successive items."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self.cursor = 0
        self._changed = threading.Condition()

    def put(self, item: Any) -> None:
        with self._changed:
            self.items.append((time.monotonic(), item))
            self._changed.notify_all()

    def wait(self, match: Callable[[Any], bool], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(self.cursor, len(self.items)):
                    if match(self.items[index][1]):
                        self.cursor = index + 1
                        return self.items[index][1]
                self.cursor = len(self.items)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._changed.wait(left)

    def stamped(self) -> list[tuple[float, Any]]:
        with self._changed:
            return list(self.items)

    def values(self) -> list[Any]:
        with self._changed:
            return [item for _, item in self.items]


class RunningDaemon:
    """`rtorrentd run` in a subprocess, with its log lines and notify messages.

    `prefix` runs it through another command (`unshare ... --fork`: then that
    command's child is the daemon, and `pid`, which `send` signals, is set to it)."""

    def __init__(
        self, config: Path, watchdog_usec: int = 400_000, prefix: Sequence[str] = ()
    ) -> None:
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"rtorrentd-test-{uuid.uuid4().hex}"
        self.notify.bind(b"\0" + name.encode())
        env = {
            **os.environ,
            "NOTIFY_SOCKET": "@" + name,
            "WATCHDOG_USEC": str(watchdog_usec),
            "RTORRENTD_BACKOFF_BASE": "0.2",
            # Its own record of deletions under way, not the user's.
            "STATE_DIRECTORY": str(config.parent / "state"),
        }
        env.pop("WATCHDOG_PID", None)
        self.process = subprocess.Popen(
            [
                *prefix,
                *(sys.executable, "-m", "rtorrentd", "run", "-c", str(config)),
                *("--log-format", "json"),
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.pid = self.process.pid
        self.logs, self.notes, self.bad_lines = Feed(), Feed(), Feed()
        self._threads = [
            threading.Thread(target=self._read_logs, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_notes, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_logs(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                self.logs.put(json.loads(line))
            except ValueError:
                self.bad_lines.put(line)

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.bad_lines.put(line)

    def _read_notes(self) -> None:
        while True:
            try:
                self.notes.put(self.notify.recv(4096).decode())
            except OSError:
                return

    def log(self, event: str, **fields: Any) -> dict[str, Any]:
        """Wait for the next log line of `event` whose fields include `fields`."""
        found: dict[str, Any] = self.logs.wait(
            lambda e: e.get("event") == event and fields.items() <= e.items(),
            f"log {event} {fields}",
        )
        return found

    def note(self, pattern: str) -> str:
        """Wait for the next notify message that `pattern` matches (re.search)."""
        found: str = self.notes.wait(lambda m: re.search(pattern, m) is not None, pattern)
        return found

    def events(self) -> list[str]:
        return [e.get("event", "") for e in self.logs.values()]

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def finish(self, signum: int = signal.SIGTERM, expected: int = 0) -> None:
        """Stop it, and check that it stopped as it should and logged only JSON."""
        self.send(signum)
        assert expected == self.process.wait(timeout=10)
        for thread in self._threads[:2]:
            thread.join(timeout=5)
        assert [] == self.bad_lines.values()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        # The readers end at EOF once the process is gone; then close the pipes,
        # or the garbage collector reports them (as a ResourceWarning) in a later test.
        for thread in self._threads[:2]:
            thread.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.notify.close()


@pytest.fixture
def run_daemon(rtorrent: RtorrentProcess, tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    """Start `rtorrentd run` on a config (the `[[rule]]` tables given) for `rtorrent`;
    the config file stays in place, for a test to rewrite before a SIGHUP."""
    started: list[RunningDaemon] = []

    def start(rules: str, interval: str = "10s") -> RunningDaemon:
        write_config(tmp_path, rtorrent, rules, interval)
        started.append(RunningDaemon(tmp_path / "config.toml"))
        return started[-1]

    yield start
    for process in started:
        process.close()


def write_config(
    tmp_path: Path, rtorrent: RtorrentProcess, rules: str, interval: str = "10s"
) -> None:
    text = config_text(
        rules, url=rtorrent.scgi_url, interval=interval, root=str(rtorrent.download_dir)
    )
    (tmp_path / "config.toml").write_text(text)


def load(rtorrent: RtorrentProcess, factory: TorrentFactory, *names: str) -> list[TorrentFile]:
    torrents = [
        factory(name, random_bytes(2000, name), dest_dir=rtorrent.download_dir) for name in names
    ]
    for torrent in torrents:
        rtorrent.load(torrent)
    return torrents


def gone(rtorrent: RtorrentProcess, torrent: TorrentFile) -> bool:
    """Erased and its file deleted; False if it is loaded and its file is there;
    a half-finished torrent fails the test."""
    loaded = torrent.info_hash in rtorrent.hashes()
    present = torrent.payload_path.exists()
    assert loaded == present, f"{torrent.name!r}: loaded={loaded} but file present={present}"
    return not loaded


@pytest.mark.integration
def test_ready_status_watchdog_and_stop(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    doomed, kept = load(rtorrent, torrent_factory, "a-1", "b-1")
    d = run_daemon(rule("a", "^a-"))

    started = d.log("daemon.started")
    d.note(r"^STATUS=2 torrents, 1 deleted \(2.0 KiB\) at \d\d:\d\d, next \d\d:\d\d$")
    d.note("^READY=1$")
    assert (gone(rtorrent, doomed), gone(rtorrent, kept)) == (True, False)
    assert {"version", "config", "dry_run", "rules"} <= started.keys()
    assert (False, 1) == (started["dry_run"], started["rules"])

    # WATCHDOG_USEC=400000: a ping every 0.2 s, so about 10 in 2 s.
    d.note("^WATCHDOG=1$")
    began = time.monotonic()
    d.notes.wait(lambda _m: time.monotonic() - began >= 2.0, "2 s of notify messages", 10)
    pings = [t for t, m in d.notes.stamped() if m == "WATCHDOG=1" and began <= t < began + 2]
    assert 6 <= len(pings) <= 14

    d.send(signal.SIGUSR1)
    d.log("poll.done", torrents=1, steps=0)
    d.note(rf"^STATUS=1 torrents at {CLOCK}, next {CLOCK}$")
    d.finish()
    d.note("^STOPPING=1$")
    assert ["daemon.stopping", "daemon.stopped"] == d.events()[-2:]
    assert all({"timestamp", "level", "event"} <= e.keys() for e in d.logs.values())


@pytest.mark.integration
def test_sighup_with_a_good_config_changes_the_next_poll(
    tmp_path: Path,
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    a1, b1 = load(rtorrent, torrent_factory, "a-1", "b-1")
    d = run_daemon(rule("a", "^a-"))
    d.note("^READY=1$")
    assert (gone(rtorrent, a1), gone(rtorrent, b1)) == (True, False)

    write_config(tmp_path, rtorrent, rule("b", "^b-"))
    d.send(signal.SIGHUP)
    reloaded = d.log("config.reloaded")
    d.note("^RELOADING=1\nMONOTONIC_USEC=[0-9]+$")
    d.note("^READY=1$")
    assert (["b"], ["a"]) == (reloaded["rules_added"], reloaded["rules_removed"])

    d.send(signal.SIGUSR1)
    d.log("action.done", hash=b1.info_hash, rule="b")
    assert gone(rtorrent, b1)
    d.finish(signal.SIGINT)


@pytest.mark.integration
def test_sighup_with_a_bad_config_keeps_the_old_one(
    tmp_path: Path,
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    (b1,) = load(rtorrent, torrent_factory, "b-1")
    d = run_daemon(rule("a", "^a-"))
    d.log("poll.done")

    write_config(
        tmp_path,
        rtorrent,
        rule("b", "^b-") + '[[rule]]\nname = "x"\nwhen = "nonsense"\naction = "stop"\n',
    )
    d.send(signal.SIGHUP)
    rejected = d.log("config.rejected")
    d.note("^READY=1$")
    assert "error" == rejected["level"]
    assert str(tmp_path / "config.toml") in rejected["error"]
    assert "nonsense" in rejected["error"]

    d.send(signal.SIGUSR1)
    d.log("poll.done", steps=0)
    assert not gone(rtorrent, b1)

    write_config(tmp_path, rtorrent, rule("b", "^b-"))
    d.send(signal.SIGHUP)
    d.log("config.reloaded", rules_added=["b"])
    d.send(signal.SIGUSR1)
    d.log("action.done", hash=b1.info_hash)
    assert gone(rtorrent, b1)
    d.finish()


@pytest.mark.integration
def test_sighup_with_a_fifo_or_an_oversize_config_keeps_the_old_one_and_the_pings(
    tmp_path: Path,
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    d = run_daemon(rule("b", "^b-"))
    d.log("poll.done")
    config = tmp_path / "config.toml"
    good = config.read_text()
    began = time.monotonic()

    config.unlink()
    os.mkfifo(config)  # no writer: a blocking open would wait for one for ever
    d.send(signal.SIGHUP)
    assert "it is a FIFO, not a regular file" in d.log("config.rejected")["error"]
    d.note("^READY=1$")

    config.unlink()
    config.write_text(good + "#" * (2 * 1024 * 1024))
    d.send(signal.SIGHUP)
    assert "it is larger than 1 MiB" in d.log("config.rejected")["error"]
    d.note("^READY=1$")

    # The old configuration still acts...
    (b1,) = load(rtorrent, torrent_factory, "b-1")
    d.send(signal.SIGUSR1)
    d.log("action.done", hash=b1.info_hash, rule="b")
    assert gone(rtorrent, b1)
    # ...and the watchdog was pinged all along (every 0.2 s; systemd waits 0.4 s).
    ended = time.monotonic()
    pings = [t for t, m in d.notes.stamped() if m == "WATCHDOG=1" and began <= t <= ended]
    stamps = [began, *pings, ended]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps) < 1.0, gaps
    d.finish()


MANY = [f"t-{i:02}" for i in range(40)]


@pytest.mark.integration
def test_sigterm_during_a_poll_finishes_the_step_and_exits(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    torrents = load(rtorrent, torrent_factory, *MANY)
    d = run_daemon(rule("t", "^t-"))
    d.log("action.deleting")

    began = time.monotonic()
    d.finish(signal.SIGTERM)
    assert time.monotonic() - began < 10
    deleted = [t.name for t in torrents if gone(rtorrent, t)]
    assert 1 <= len(deleted) < len(MANY)
    events = d.events()
    assert {"daemon.stopping", "poll.interrupted"} <= set(events)
    # The interrupted poll still reports what it did, then the daemon stops.
    assert events.index("poll.interrupted") < events.index("daemon.stopped")
    d.note("^STOPPING=1$")


@pytest.mark.integration
def test_a_second_stop_signal_exits_at_once(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    load(rtorrent, torrent_factory, *MANY)
    d = run_daemon(rule("t", "^t-"))
    d.log("action.deleting")

    # Different signals: two pending SIGTERMs would merge into one. (The kernel
    # may deliver the SIGINT first; either way the second one exits.)
    d.send(signal.SIGTERM)
    d.finish(signal.SIGINT, expected=1)
    first, second = d.log("daemon.stopping"), d.log("daemon.stopping")
    assert (False, True) == (first["immediate"], second["immediate"])


BIG = 20_000  # files: about a second of unlinks


@pytest.mark.integration
def test_a_second_stop_signal_during_a_big_deletion_exits_once_it_is_logged(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str, str], RunningDaemon],
) -> None:
    files: dict[str | bytes, bytes] = {f"cd{i // 100}/{i}.bin": b"x" for i in range(BIG)}
    big = torrent_factory("big", files, dest_dir=rtorrent.download_dir)
    rtorrent.load(big, complete=True, timeout=60)
    # A poll's deadline is twice the interval plus the call timeout: 10 s would
    # end a poll over 20,000 files on a busy machine before it deletes anything.
    d = run_daemon(rule("big", "^big$"), "2m")
    # Reading and planning 20,000 files twice takes a while on a busy machine.
    d.logs.wait(lambda e: e.get("event") == "action.deleting", "action.deleting", 3 * WAIT)

    # Frozen mid-deletion, both signals wait for it to go on: they come at once
    # and during the unlinks, however slow this machine is.
    d.send(signal.SIGSTOP)
    d.send(signal.SIGTERM)
    d.send(signal.SIGINT)
    resumed = time.monotonic()
    d.send(signal.SIGCONT)
    # Unlinking 20,000 files, with their content check and journal, on a loaded machine.
    done = d.logs.wait(
        lambda e: e.get("event") == "action.done" and e.get("name") == "big",
        "action.done big",
        3 * WAIT,
    )
    assert 1 == d.process.wait(timeout=3 * WAIT)

    # The second stop signal came during the deletion, which it let finish.
    events = d.events()
    first, second = [e for e in d.logs.values() if e.get("event") == "daemon.stopping"]
    assert (False, True, True) == (first["immediate"], second["immediate"], second["deleting"])
    # Then it exited: right after the step's outcome, before any other step.
    assert ["daemon.stopping", "daemon.stopping", "action.done", "poll.done"] == events[-4:]
    assert (BIG, "done") == (done["freed_bytes"], done["result"])
    assert gone(rtorrent, big)
    # The unlinks ran off the loop: it went on pinging the watchdog (every 0.2 s).
    done_at = next(t for t, e in d.logs.stamped() if e.get("event") == "action.done")
    # No gap between pings longer than a blocked loop would leave: one that ran the
    # unlinks itself would go silent for all of them (about a second on a slow
    # machine; a fast one finishes between two pings, which proves nothing either way,
    # so tests/test_deletion.py measures the loop's stalls in-process too).
    pings = [t for t, m in d.notes.stamped() if m == "WATCHDOG=1" and resumed < t < done_at]
    stamps = [resumed, *pings, done_at]
    longest = max(b - a for a, b in itertools.pairwise(stamps))
    assert longest < 1.0, (longest, len(pings), done_at - resumed)


@pytest.mark.integration
def test_sighup_during_a_poll_takes_effect_after_it(
    tmp_path: Path,
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    torrents = load(rtorrent, torrent_factory, *MANY)
    d = run_daemon(rule("t", "^t-"))
    d.log("action.deleting")

    write_config(tmp_path, rtorrent, rule("keep", "^t-", "keep"))
    d.send(signal.SIGHUP)
    d.log("config.reloaded", rules_added=["keep"])

    events = d.events()
    assert events.index("poll.done") < events.index("config.reloaded")
    assert all(gone(rtorrent, t) for t in torrents)
    d.finish()


@pytest.mark.integration
def test_rtorrent_restart_is_survived(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    run_daemon: Callable[[str], RunningDaemon],
) -> None:
    load(rtorrent, torrent_factory, "keeper")
    d = run_daemon(rule("doomed", "^doomed"))
    d.note("^READY=1$")

    rtorrent.kill()
    d.send(signal.SIGUSR1)
    unreachable = d.log("rtorrent.unreachable")
    # The first failure and two retries (0.2 s, 0.4 s), each with its status line.
    for _ in range(3):
        d.note(rf"^STATUS=rtorrent unreachable since {CLOCK}: .+, retry in [0-9.]+s$")
    assert "warning" == unreachable["level"]

    rtorrent.start()
    d.log("rtorrent.recovered")
    (doomed,) = load(rtorrent, torrent_factory, "doomed")
    d.send(signal.SIGUSR1)
    d.log("action.done", hash=doomed.info_hash)
    assert gone(rtorrent, doomed)
    assert 1 == d.events().count("rtorrent.unreachable")
    d.finish()
