"""Notifications (`[notify]`): configuration, the messages, and their delivery with
Apprise to a real HTTP endpoint served by the test (`json://127.0.0.1:PORT/...`),
from a daemon that deletes for real against a real rtorrent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from harness import RtorrentProcess, TorrentFactory
from harness.rtorrent import free_port
from structlog.testing import capture_logs
from structlog.typing import EventDict
from test_daemon import WAIT, Feed, RunningDaemon, config_text, gone, load, rule

from rtorrentd.config.instances import Instances, load_instances, read_each
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import DEFAULT_EVENTS, Action, NotifySettings
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine.memory import Memory
from rtorrentd.engine.plan import Decision, Plan, Step
from rtorrentd.engine.space import SpaceOutcome
from rtorrentd.errors import ConfigError
from rtorrentd.redact import hide, url_secrets
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.fleet import Fleet
from rtorrentd.service.lifecycle import Lifecycle
from rtorrentd.service.notices import MAX_LINES, Message, Notices
from rtorrentd.service.notify import Notifications
from rtorrentd.service.poll import PollResult
from rtorrentd.service.systemd import Notifier

README = Path(__file__).resolve().parent.parent / "README.md"
PASSWORD, TOKEN = "S3cretPassw0rd", "T0kenSecretXYZ"  # must never reach a log line


# --- a real endpoint ------------------------------------------------------------


class Endpoint:
    """An HTTP server on 127.0.0.1 for Apprise's `json://` to post to.

    Each request is put in `arrived` as it comes; then it is answered as the
    next of `plan` says ("ok", the default, "fail": 500, "hang": wait for
    `release`, then 500), and an answered "ok" is put in `received`."""

    def __init__(self, port: int = 0) -> None:
        self.arrived, self.received = Feed(), Feed()
        self.plan: deque[str] = deque()
        self.release = threading.Event()
        self.answered = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers["Content-Length"])
                payload = json.loads(self.rfile.read(size))
                endpoint.arrived.put(payload)
                how = endpoint.plan.popleft() if endpoint.plan else "ok"
                if how == "hang":
                    endpoint.release.wait(WAIT)
                # Recorded before the answer: once the sender has it, the test may look.
                endpoint.answered += 1
                if how == "ok":
                    endpoint.received.put(payload)
                self.send_response(200 if how == "ok" else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def secret_url(port: int) -> str:
    """A json:// URL with a password and a token in it, as people write them."""
    return f"json://rtorrentd:{PASSWORD}@127.0.0.1:{port}/hook/{TOKEN}"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.close()


def message(payload: dict[str, Any]) -> str:
    return f"{payload['title']}\n{payload['message']}"


# --- configuration --------------------------------------------------------------

BASE = '[rtorrent]\nurl = "scgi:///run/rt.socket"\n'


def test_notify_settings_and_defaults() -> None:
    config = parse_config(BASE + '[notify]\nurls = ["json://127.0.0.1:9/hook"]\n', "f.toml")
    assert NotifySettings(("json://127.0.0.1:9/hook",), DEFAULT_EVENTS, "rtorrentd") == (
        config.notify
    )
    text = (
        BASE + '[notify]\nurls = ["json://h/x"]\nevents = ["deleted", "stopped"]\ntitle = "box"\n'
    )
    assert (
        NotifySettings(("json://h/x",), ("deleted", "stopped"), "box")
        == parse_config(text, "f.toml").notify
    )
    assert parse_config(BASE, "f.toml").notify is None


def test_a_url_apprise_cannot_use_is_named_by_line_and_scheme_never_shown() -> None:
    text = BASE + f'[notify]\nurls = [\n  "json://127.0.0.1:9/x",\n  "tgram://{TOKEN}",\n]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.toml")
    error = str(caught.value)
    assert error.startswith("f.toml:6: [notify]: urls #2 (tgram://…) is not a URL Apprise")
    assert "write Apprise URLs, like" in error
    assert TOKEN not in error


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("urls = []\n", "f.toml:4: [notify]: urls is not a list of Apprise URLs"),
        ('urls = "json://h/x"\n', "f.toml:4: [notify]: urls is not a list of Apprise URLs"),
        ("urls = [5]\n", "f.toml:4: [notify]: urls #1 (…) is 5, not text"),
        ('events = ["deleted"]\n', "f.toml:3: [notify]: urls is missing"),
        (
            'urls = ["json://h/x"]\nevents = ["deletions"]\n',
            'f.toml:5: [notify]: events = ["deletions"] has "deletions", which is not an event',
        ),
        ('urls = ["json://h/x"]\ntitle = ""\n', 'f.toml:5: [notify]: title = "" is not a short'),
        ('urls = ["json://h/x"]\nsecret = 1\n', 'f.toml:5: [notify]: unknown key "secret"'),
    ],
)
def test_notify_errors(table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + "[notify]\n" + table, "f.toml")
    assert str(caught.value).startswith(expected)


def test_check_shows_no_secret_of_a_bad_url_not_even_through_apprises_logging(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(BASE + f'[notify]\nurls = ["tgram://{TOKEN}"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "rtorrentd", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 2 == done.returncode
    assert "urls #1 (tgram://…) is not a URL Apprise can send to" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_notify_may_stand_in_one_file_of_a_directory_and_not_two(tmp_path: Path) -> None:
    notify = '[notify]\nurls = ["json://127.0.0.1:9/hook"]\n'
    (tmp_path / "alice.toml").write_text(config_text() + notify)
    (tmp_path / "bob.toml").write_text(config_text())
    assert NotifySettings(("json://127.0.0.1:9/hook",)) == load_instances(tmp_path).notify

    (tmp_path / "bob.toml").write_text(config_text() + notify)
    loaded = read_each(str(tmp_path))
    assert ([], ["alice", "bob"]) == (list(loaded.configs), sorted(loaded.errors))
    assert f"[notify] is also in {tmp_path / 'bob.toml'}" in str(loaded.errors["alice"])
    assert f"[notify] is also in {tmp_path / 'alice.toml'}" in str(loaded.errors["bob"])


def test_url_secrets_hide_every_part_that_may_be_secret() -> None:
    for url, text in [
        (secret_url(8080), f"POST http://127.0.0.1:8080/hook/{TOKEN} as rtorrentd:{PASSWORD}"),
        (f"tgram://123456:{TOKEN}/987654321", f"bot123456:{TOKEN} chat 987654321"),
        (f"discord://4174216/{TOKEN}%2Fx", f"webhook {TOKEN}/x failed"),
    ]:
        hidden = hide(text, url_secrets(url))
        assert TOKEN not in hidden and PASSWORD not in hidden and "***" in hidden
    assert "ntfy.sh" in hide("ntfy.sh/topic9", url_secrets("ntfy://ntfy.sh/topic9"))


# --- the messages ------------------------------------------------------------------


class Posted:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def post(self, message: Message) -> None:
        self.messages.append(message)


def _step(name: str, action: Action = Action.DELETE, rule: str = "old") -> Step:
    return Step(
        name.encode().hex().upper()[:40].ljust(40, "0"), name, Decision(action, rule, ()), (), 2000
    )


def _poll(*results: StepResult, space: tuple[SpaceOutcome, ...] = ()) -> PollResult:
    plan = Plan(tuple(r.step for r in results), (), (), len(results), 0, space)
    return PollResult(len(results), plan, results, Memory.empty(), 0.1)


def test_the_deletions_of_a_poll_are_one_message_with_the_bytes_freed() -> None:
    posted = Posted()
    notices = Notices("roger", NotifySettings(("json://h/x",)), posted)
    notices.polled(
        _poll(
            StepResult(_step("a-1"), Result.DONE, freed_bytes=2000),
            StepResult(_step("b\n1", rule="space /data"), Result.DONE, freed_bytes=3 * 1024**3),
            StepResult(_step("c-1", Action.STOP, "idle"), Result.DONE),
            StepResult(_step("d-1"), Result.SKIPPED, "gone"),
        ),
        dry_run=False,
    )
    # `stopped` is not a default event.
    [deleted] = posted.messages
    assert ("deleted", "success") == (deleted.event, deleted.level)
    assert "rtorrentd roger: 2 torrents deleted, 3.0 GiB freed" == deleted.title
    assert "a-1: 2.0 KiB (rule old)\nb?1: 3.0 GiB (rule space /data)" == deleted.body


def test_a_refusal_that_stands_is_told_once() -> None:
    posted = Posted()
    notices = Notices(None, NotifySettings(("json://h/x",)), posted)
    refused = StepResult(_step("a-1"), Result.REFUSED, "another torrent lists its files")
    other = StepResult(_step("b-1"), Result.REFUSED, "outside allowed_roots")
    notices.polled(_poll(refused), dry_run=True)
    notices.polled(_poll(refused, other), dry_run=False)
    notices.polled(_poll(refused, other), dry_run=False)
    notices.polled(_poll(), dry_run=False)
    notices.polled(_poll(refused), dry_run=False)
    assert [
        ("rtorrentd: 1 step refused (dry run)", "delete a-1 (rule old): another torrent lists"),
        ("rtorrentd: 1 step refused", "delete b-1 (rule old): outside allowed_roots"),
        ("rtorrentd: 1 step refused", "delete a-1 (rule old): another torrent lists"),
    ] == [(m.title, m.body[:44]) for m in posted.messages]


def test_space_low_is_told_when_it_goes_low_and_long_bodies_are_cut() -> None:
    posted = Posted()
    notices = Notices(None, NotifySettings(("json://h/x",), ("space_low", "deleted")), posted)
    low = SpaceOutcome("/data", 10 * 1024**3, 50 * 1024**3, 80 * 1024**3, 0, 3, 81 * 1024**3, 0)
    for space in [(low,), (low,), (), (low,)]:
        notices.polled(_poll(space=space), dry_run=False)
    assert 2 == len(posted.messages)
    assert "rtorrentd: space low on /data" == posted.messages[0].title
    assert posted.messages[0].body.startswith("space /data: 10.0 GiB free < 50.0 GiB")

    many = [StepResult(_step(f"t{i}"), Result.DONE, freed_bytes=1) for i in range(40)]
    notices.polled(_poll(*many), dry_run=False)
    lines = posted.messages[-1].body.split("\n")
    assert (MAX_LINES, f"… and {40 - MAX_LINES + 1} more") == (len(lines), lines[-1])


def test_unreachable_and_recovered_messages_follow_the_events_setting() -> None:
    posted = Posted()
    notices = Notices("bob", NotifySettings(("json://h/x",), ("recovered",), "box"), posted)
    notices.unreachable("scgi:///run/rt.socket", "refused")
    notices.recovered("scgi:///run/rt.socket", "2m5s")
    [recovered] = posted.messages
    assert "box bob: rtorrent reachable again" == recovered.title
    assert "scgi:///run/rt.socket answers again, after 2m5s." == recovered.body


# --- delivery: a real endpoint ---------------------------------------------------


@contextmanager
def watching(event: str) -> Iterator[tuple[list[EventDict], anyio.Event]]:
    """Like `capture_logs`, with an event set when a log event `event` comes."""
    seen = anyio.Event()

    def watch(_logger: object, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if event_dict.get("event") == event:
            seen.set()
        return event_dict

    processors = structlog.get_config()["processors"]
    before = processors.copy()
    with capture_logs() as logs:
        processors.insert(0, watch)
        structlog.configure(processors=processors)
        try:
            yield logs, seen
        finally:
            processors.remove(watch)
    assert before == structlog.get_config()["processors"]


def _no_secret_logged(logs: list[EventDict], capfd: pytest.CaptureFixture[str]) -> None:
    out, err = capfd.readouterr()
    text = json.dumps(logs, default=str) + out + err
    assert PASSWORD not in text and TOKEN not in text


@pytest.mark.anyio
async def test_a_message_arrives_at_the_endpoint(
    endpoint: Endpoint, capfd: pytest.CaptureFixture[str]
) -> None:
    outbox = Notifications(NotifySettings((secret_url(endpoint.port),)), base=0.05)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(outbox.run)
            outbox.post(Message("deleted", "rtorrentd: 1 torrent deleted", "a-1: 2.0 KiB"))
            assert await outbox.flush(WAIT)
            tasks.cancel_scope.cancel()
    payload = endpoint.received.wait(lambda _p: True, "the message")
    assert ("rtorrentd: 1 torrent deleted", "a-1: 2.0 KiB") == (
        payload["title"],
        payload["message"],
    )
    assert [("notify.sent", "#1 (json://…)")] == [(e["event"], e["target"]) for e in logs]
    _no_secret_logged(logs, capfd)


@pytest.mark.anyio
async def test_a_refused_endpoint_is_retried_and_its_secrets_stay_out_of_the_logs(
    capfd: pytest.CaptureFixture[str],
) -> None:
    port = free_port()  # nothing listens yet: connection refused
    outbox = Notifications(NotifySettings((secret_url(port),)), base=0.05)
    with watching("notify.failed") as (logs, failing):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(outbox.run)
            outbox.post(Message("unreachable", "rtorrentd: rtorrent unreachable", "x"))
            with anyio.fail_after(WAIT):
                await failing.wait()
            late = Endpoint(port)
            try:
                assert await outbox.flush(WAIT)
            finally:
                late.close()
            tasks.cancel_scope.cancel()
    failed = next(e for e in logs if e["event"] == "notify.failed")
    assert "refused" in failed["error"].lower()
    assert (1, "#1 (json://…)", "unreachable") == (
        failed["attempt"],
        failed["target"],
        failed["kind"],
    )
    assert "rtorrentd: rtorrent unreachable" == late.received.values()[0]["title"]
    _no_secret_logged(logs, capfd)


def hanging_url(port: int) -> str:
    """Apprise waits up to 60 s for an answer (its default is 4 s)."""
    return secret_url(port) + "?rto=60"


@pytest.mark.anyio
async def test_a_send_past_its_timeout_fails_and_is_retried_once_its_thread_returns(
    endpoint: Endpoint, capfd: pytest.CaptureFixture[str]
) -> None:
    endpoint.plan.append("hang")
    outbox = Notifications(NotifySettings((hanging_url(endpoint.port),)), base=0.05, timeout=0.2)
    with watching("notify.failed") as (logs, failing):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(outbox.run)
            outbox.post(Message("deleted", "first", "x"))
            with anyio.fail_after(WAIT):
                await failing.wait()
            endpoint.release.set()
            assert await outbox.flush(WAIT)
            tasks.cancel_scope.cancel()
    errors = [e["error"] for e in logs if e["event"] == "notify.failed"]
    assert "no answer within 0.2s" == errors[0]
    # Until the hung thread returns, no second one is started for the URL.
    assert set(errors[1:]) <= {"the attempt before has not returned yet", errors[-1]}
    assert ["first"] == [p["title"] for p in endpoint.received.values()]
    assert 2 == len(endpoint.arrived.values())
    _no_secret_logged(logs, capfd)


@pytest.mark.anyio
async def test_a_full_queue_drops_the_oldest_waiting_message(endpoint: Endpoint) -> None:
    endpoint.plan.append("hang")
    outbox = Notifications(NotifySettings((hanging_url(endpoint.port),)), base=0.05, capacity=3)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(outbox.run)
            outbox.post(Message("deleted", "m0", "x"))
            await anyio.to_thread.run_sync(endpoint.arrived.wait, lambda _p: True, "m0")
            for n in range(1, 5):
                outbox.post(Message("deleted", f"m{n}", "x"))
            endpoint.release.set()
            assert await outbox.flush(WAIT)
            tasks.cancel_scope.cancel()
    dropped = [e["title"] for e in logs if e["event"] == "notify.dropped"]
    assert ["m1", "m2"] == dropped
    # m0 was being sent (it failed, then went again); m3 and m4 waited.
    assert ["m0", "m3", "m4"] == [p["title"] for p in endpoint.received.values()]


# --- a daemon against a real rtorrent ------------------------------------------------


@pytest.fixture
def notified(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> Iterator[Callable[[str, str], RunningDaemon]]:
    """`rtorrentd run` on a config with the rules given and `[notify] urls = [URL]`."""
    started: list[RunningDaemon] = []

    def start(rules: str, url: str) -> RunningDaemon:
        text = config_text(
            rules, url=rtorrent.scgi_url, interval="10s", root=str(rtorrent.download_dir)
        )
        events = '["deleted", "refused", "unreachable", "recovered"]'
        (tmp_path / "config.toml").write_text(
            text + f'[notify]\nurls = ["{url}"]\nevents = {events}\n'
        )
        started.append(RunningDaemon(tmp_path / "config.toml"))
        return started[-1]

    yield start
    for process in started:
        process.close()


def _no_secret_in(d: RunningDaemon) -> None:
    text = json.dumps(d.logs.values()) + "".join(d.bad_lines.values())
    assert PASSWORD not in text and TOKEN not in text


@pytest.mark.integration
def test_a_real_deletion_is_notified_and_an_outage_once_each_way(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    endpoint: Endpoint,
    notified: Callable[[str, str], RunningDaemon],
) -> None:
    doomed, kept = load(rtorrent, torrent_factory, "a-1", "b-1")
    d = notified(rule("old", "^a-"), secret_url(endpoint.port))
    deleted = endpoint.received.wait(lambda _p: True, "the deletion's message")
    assert gone(rtorrent, doomed) and not gone(rtorrent, kept)
    assert ("rtorrentd: 1 torrent deleted, 2.0 KiB freed", "a-1: 2.0 KiB (rule old)") == (
        deleted["title"],
        deleted["message"],
    )
    assert "success" == deleted["type"]
    d.log("notify.sent", kind="deleted", target="#1 (json://…)")

    rtorrent.kill()
    d.send(signal.SIGUSR1)
    for _ in range(3):  # the failing poll and two retries
        d.note(r"^STATUS=rtorrent unreachable since")
    rtorrent.start()
    d.log("rtorrent.recovered")
    endpoint.received.wait(lambda p: "reachable again" in p["title"], "the recovery's message")
    d.send(signal.SIGUSR1)
    d.log("poll.done", torrents=1)
    d.finish()
    titles = [p["title"] for p in endpoint.received.values()]
    assert [
        "rtorrentd: 1 torrent deleted, 2.0 KiB freed",
        "rtorrentd: rtorrent unreachable",
        "rtorrentd: rtorrent reachable again",
    ] == titles
    unreachable = endpoint.received.values()[1]["message"]
    assert re.fullmatch(
        r"scgi://\S+: .+\. Retrying; a message follows when it answers again\.", unreachable
    )
    _no_secret_in(d)


@pytest.mark.integration
def test_a_hanging_endpoint_delays_no_poll_and_the_message_is_retried(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    endpoint: Endpoint,
    notified: Callable[[str, str], RunningDaemon],
) -> None:
    endpoint.plan.append("hang")
    (doomed,) = load(rtorrent, torrent_factory, "a-1")
    d = notified(rule("old", "^a-"), hanging_url(endpoint.port))
    held = endpoint.arrived.wait(lambda _p: True, "the deletion's message, held")
    assert gone(rtorrent, doomed)

    # While the endpoint holds the message unanswered, polls go on.
    d.send(signal.SIGUSR1)
    d.log("poll.done", torrents=0)
    d.send(signal.SIGUSR1)
    d.log("poll.done", torrents=0)
    d.note(r"^STATUS=0 torrents at")
    assert 0 == endpoint.answered

    endpoint.release.set()  # answered 500: failed, then sent again
    failed = d.log("notify.failed", kind="deleted")
    assert "500" in failed["error"] and 1 == failed["attempt"]
    sent = endpoint.received.wait(lambda _p: True, "the message, sent again")
    assert held == sent
    d.log("notify.sent", kind="deleted")
    d.finish()
    _no_secret_in(d)


def test_the_readme_lists_every_notify_event() -> None:
    code = "".join(p.read_text() for p in (README.parent / "rtorrentd").rglob("*.py"))
    emitted = set(re.findall(r'"(notify\.\w+)"', code))
    section = README.read_text().split("## Logs", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(notify\.\w+)`", section))
    assert {"notify.sent", "notify.failed", "notify.dropped", "notify.unchanged"} <= emitted
    assert emitted == listed


@pytest.mark.anyio
async def test_a_reload_that_changes_notify_says_it_takes_effect_on_a_restart(
    tmp_path: Path,
) -> None:
    notify = '[notify]\nurls = ["json://127.0.0.1:9/hook"]\nevents = []\n'
    config = parse_config(config_text(root=str(tmp_path)) + notify, "x")
    fleet = Fleet(
        Instances("x", False, {"x": config}, None, config.notify),
        False,
        lambda c: open_transport(c.rtorrent.url),
        notifier=Notifier(),
        lifecycle=Lifecycle(),
        base=0.2,
        outbox=Posted(),
    )
    assert fleet.members["x"].notices is not None
    with capture_logs() as logs:
        fleet.warn_daemon_wide({"x": config})
        fleet.warn_daemon_wide({"x": parse_config(config_text(root=str(tmp_path)), "x")})
    assert ["notify.unchanged"] == [e["event"] for e in logs]


@pytest.mark.integration
def test_run_once_sends_its_messages_before_it_exits(
    tmp_path: Path,
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    endpoint: Endpoint,
) -> None:
    (doomed,) = load(rtorrent, torrent_factory, "a-1")
    text = config_text(rule("old", "^a-"), url=rtorrent.scgi_url, root=str(rtorrent.download_dir))
    config = tmp_path / "roger.toml"
    config.write_text(text + f'[notify]\nurls = ["{secret_url(endpoint.port)}"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "rtorrentd", "run", "--once", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "STATE_DIRECTORY": str(tmp_path / "state")},
    )
    assert 0 == done.returncode, done.stderr
    assert gone(rtorrent, doomed)
    [payload] = endpoint.received.values()  # there already: the command waited for it
    assert "rtorrentd: 1 torrent deleted, 2.0 KiB freed" == payload["title"]
    assert PASSWORD not in done.stderr and TOKEN not in done.stderr
