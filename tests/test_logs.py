"""Log formats: each line parses back to the event that was logged; secrets never appear."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from rtorrentd.redact import redact_urls
from rtorrentd.service.logs import (
    FORMATS,
    LogFormat,
    configure_logging,
    default_format,
    is_secret_key,
    logfmt_value,
    normalize_level,
    redact,
    render_logfmt,
)


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def emit(fmt: LogFormat, level: str = "debug", **fields: object) -> list[str]:
    """Configure `fmt`, log one info event with `fields`, return the lines written."""
    out = io.StringIO()
    configure_logging(fmt, level, out)
    structlog.get_logger().info("action.done", **fields)
    return out.getvalue().splitlines()


# --- a logfmt reader, written from the format's description, not from the code --

_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|(.))", re.DOTALL)
_SIMPLE = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_TOKEN = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?: |$)')


def _unescape(match: re.Match[str]) -> str:
    hex_code = match.group(1) or match.group(2) or match.group(3)
    return chr(int(hex_code, 16)) if hex_code else _SIMPLE[match.group(4)]


def parse_logfmt(line: str) -> dict[str, str]:
    """`key=value key="quoted \\"value\\""` to a dict of strings; fails on anything else."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        match = _TOKEN.match(line, pos)
        assert match, f"not logfmt at {pos}: {line[pos:]!r}"
        key, raw = match.groups()
        quoted = raw.startswith('"')
        fields[key] = _ESCAPE.sub(_unescape, raw[1:-1]) if quoted else raw
        pos = match.end()
    return fields


def parse_journal(line: str) -> tuple[int, dict[str, str]]:
    match = re.fullmatch(r"<([0-7])>(.*)", line)
    assert match, line
    return int(match.group(1)), parse_logfmt(match.group(2))


# --- logfmt -----------------------------------------------------------------------

ROUND_TRIP = [
    "plain",
    "two words",
    'a "quoted" word',
    "new\nline",
    "tab\tand\rcarriage",
    "back\\slash",
    "key=value",
    "",
    " leading and trailing ",
    "caf\u00e9 \u6f22\u5b57 \U0001f389",
    "line\u2028separator",
    "nul\x00 esc\x1b del\x7f",
    "lone surrogate \udcff",
    "non-breaking\u00a0space",
]


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_logfmt_values_round_trip(value: str) -> None:
    line = render_logfmt({"event": "action.done", "name": value})
    assert {"event": "action.done", "name": value} == parse_logfmt(line)
    assert line.isprintable()


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(), max_size=5))
def test_any_text_round_trips_on_one_line(fields: dict[str, str]) -> None:
    event = {"event": "poll.done", **fields}
    line = render_logfmt(event)
    assert line.isprintable()
    assert event == parse_logfmt(line)


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (123, "123"),
        (1.5, "1.5"),
        ("ABC", "ABC"),
        ("x y", '"x y"'),
        ("", '""'),
        (Path("/srv/a b"), '"/srv/a b"'),
    ],
)
def test_logfmt_value(value: object, rendered: str) -> None:
    assert rendered == logfmt_value(value)


@pytest.mark.parametrize(
    "value",
    [
        {"ratio": 2.5, "complete": True, "name": 'a "b"'},
        ("stop", 3, None),
        [{"nested": ["caf\u00e9"]}],
        frozenset({"b", "a"}),
    ],
)
def test_logfmt_renders_nested_values_as_json(value: object) -> None:
    line = render_logfmt({"event": "action.done", "values": value})
    parsed = json.loads(parse_logfmt(line)["values"])
    expected = sorted(value) if isinstance(value, frozenset) else value
    assert json.loads(json.dumps(expected)) == parsed


def test_logfmt_puts_the_event_first_and_cleans_keys() -> None:
    line = render_logfmt({"hash": "ABC", "event": "action.done", "bad key=": 1})
    assert "event=action.done hash=ABC bad_key_=1" == line


# --- journal ----------------------------------------------------------------------


def test_journal_line() -> None:
    [line] = emit("journal", hash="ABC", name="x y", freed_bytes=123, dry_run=False)
    assert '<6>event=action.done hash=ABC name="x y" freed_bytes=123 dry_run=false' == line


@pytest.mark.parametrize(
    ("method", "priority"),
    [("debug", 7), ("info", 6), ("warning", 4), ("warn", 4), ("error", 3), ("critical", 2)],
)
def test_journal_priority_per_level(method: str, priority: int) -> None:
    out = io.StringIO()
    configure_logging("journal", "debug", out)
    getattr(structlog.get_logger(), method)("rtorrent.unreachable", attempt=3)
    assert (priority, {"event": "rtorrent.unreachable", "attempt": "3"}) == parse_journal(
        out.getvalue().rstrip("\n")
    )


def test_journal_exception_is_one_line_at_error_priority() -> None:
    out = io.StringIO()
    configure_logging("journal", "info", out)
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        structlog.get_logger().exception("action.failed", hash="ABC")
    [line] = out.getvalue().splitlines()
    priority, fields = parse_journal(line)
    assert 3 == priority
    assert fields["exception"].startswith("Traceback (most recent call last):\n")
    assert fields["exception"].endswith("RuntimeError: boom\nsecond line")


# --- json -------------------------------------------------------------------------


def test_json_line() -> None:
    before = datetime.now(timezone.utc)
    [line] = emit("json", hash="ABC", name="caf\u00e9\n", freed_bytes=123, ratio=2.5)
    record = json.loads(line)
    assert ["timestamp", "level", "event"] == list(record)[:3]
    stamp = datetime.fromisoformat(record.pop("timestamp").replace("Z", "+00:00"))
    assert timedelta(0) == stamp.utcoffset()
    assert before <= stamp <= datetime.now(timezone.utc)
    expected = {
        "level": "info",
        "event": "action.done",
        "hash": "ABC",
        "name": "caf\u00e9\n",
        "freed_bytes": 123,
        "ratio": 2.5,
    }
    assert expected == record
    assert line.isascii()


def test_json_every_line_parses() -> None:
    out = io.StringIO()
    configure_logging("json", "debug", out)
    log = structlog.get_logger()
    log.info("daemon.started", version="0.1.0")
    log.warning("config.rejected", error="line 3: bad\nthing", path=Path("/etc/x"))
    log.info("daemon.stopping", name="\udcff")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert ["daemon.started", "config.rejected", "daemon.stopping"] == [r["event"] for r in records]
    assert "/etc/x" == records[1]["path"]


# --- console ----------------------------------------------------------------------


def test_console_line_without_colours_when_not_a_tty() -> None:
    [line] = emit("console", hash="ABC")
    assert "action.done" in line
    assert "hash=ABC" in line
    assert "\x1b[" not in line


# --- levels and reconfiguration ---------------------------------------------------


def test_level_filters() -> None:
    out = io.StringIO()
    configure_logging("journal", "warning", out)
    log = structlog.get_logger()
    log.debug("poll.done")
    log.info("poll.done")
    log.warning("rtorrent.unreachable")
    assert ["<4>event=rtorrent.unreachable"] == out.getvalue().splitlines()


def test_level_filter_with_capture_logs() -> None:
    configure_logging("json", "info", io.StringIO())
    log = structlog.get_logger()
    with capture_logs() as logs:
        log.debug("poll.started")
        log.info("poll.done", torrents=3)
    assert [{"event": "poll.done", "torrents": 3, "log_level": "info"}] == logs


@pytest.mark.parametrize(
    ("given_level", "name"),
    [("info", "info"), ("WARNING", "warning"), ("warn", "warning"), (" Debug ", "debug")],
)
def test_normalize_level(given_level: str, name: str) -> None:
    assert name == normalize_level(given_level)


def test_unknown_level_and_format_are_refused() -> None:
    with pytest.raises(ValueError, match="use one of: debug, info, warning, error, critical"):
        configure_logging("json", "verbose")
    with pytest.raises(ValueError, match="use one of: journal, console, json"):
        configure_logging("xml")  # type: ignore[arg-type]


def test_reconfigure_reaches_loggers_made_before() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", first)
    log = structlog.get_logger()
    log.info("config.reloaded")
    configure_logging("journal", "info", second)
    log.info("config.reloaded")
    assert "config.reloaded" == json.loads(first.getvalue())["event"]
    assert "<6>event=config.reloaded\n" == second.getvalue()


def test_context_variables_are_included() -> None:
    out = io.StringIO()
    configure_logging("journal", "info", out)
    structlog.contextvars.bind_contextvars(poll=7)
    structlog.get_logger().info("poll.done")
    assert "<6>event=poll.done poll=7\n" == out.getvalue()


# --- default format ---------------------------------------------------------------


def test_default_format_journal(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream:
        stat = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert "journal" == default_format(env, stream)
        assert "json" == default_format({}, stream)


def test_default_format_console_on_a_tty() -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w") as tty:
            assert "console" == default_format({}, tty)
    finally:
        os.close(leader)


def test_default_format_json_when_piped() -> None:
    assert "json" == default_format({}, io.StringIO())
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w") as pipe:
        assert "json" == default_format({"JOURNAL_STREAM": "1:2"}, pipe)


# --- redaction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("Password", True),
        ("rtorrent_password", True),
        ("passwd", True),
        ("secret", True),
        ("client_secret", True),
        ("token", True),
        ("api_key", True),
        ("authorization", True),
        ("password_file", False),
        ("secret_path", False),
        ("name", False),
        ("hash", False),
        ("url", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert secret == is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("https://roger:hunter2@seedbox.example/RPC2", "https://roger:***@seedbox.example/RPC2"),
        ("http://u:p@127.0.0.1:8080/RPC2", "http://u:***@127.0.0.1:8080/RPC2"),
        ("http://u:p@ss@host/RPC2", "http://u:***@host/RPC2"),
        ("http://:p@host", "http://:***@host"),
        (
            "cannot reach http://a:b@c/x and https://d:e@f",
            "cannot reach http://a:***@c/x and https://d:***@f",
        ),
        ("https://seedbox.example/RPC2", "https://seedbox.example/RPC2"),
        ("https://roger@seedbox.example/RPC2", "https://roger@seedbox.example/RPC2"),
        ("http://host:8080/RPC2", "http://host:8080/RPC2"),
        ("scgi:///srv/rtorrent/rpc.socket", "scgi:///srv/rtorrent/rpc.socket"),
        ("mail roger@example.org", "mail roger@example.org"),
    ],
)
def test_redact_urls(text: str, redacted: str) -> None:
    assert redacted == redact_urls(text)


def test_redact_processor() -> None:
    event = {
        "event": "config.reloaded",
        "password": "hunter2",
        "token": 12345,
        "password_file": "/etc/rtorrentd/pw",
        "empty_password": None,
        "url": "https://u:hunter2@h/RPC2",
        "settings": {"url": "https://u:hunter2@h/RPC2", "auth": {"secret": "s3"}},
        "urls": ("https://u:hunter2@h/RPC2", 1),
        "error": OSError("https://u:hunter2@h/RPC2: refused"),
        "exc_info": True,
        "count": 3,
    }
    expected = {
        "event": "config.reloaded",
        "password": "***",
        "token": "***",
        "password_file": "/etc/rtorrentd/pw",
        "empty_password": None,
        "url": "https://u:***@h/RPC2",
        "settings": {"url": "https://u:***@h/RPC2", "auth": {"secret": "***"}},
        "urls": ("https://u:***@h/RPC2", 1),
        "error": "https://u:***@h/RPC2: refused",
        "exc_info": True,
        "count": 3,
    }
    assert expected == redact(None, "info", event)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_format_lets_a_password_through(fmt: LogFormat) -> None:
    out = io.StringIO()
    configure_logging(fmt, "info", out)
    log = structlog.get_logger()
    log.info("config.reloaded", password="hunter2", url="https://u:hunter2@h/RPC2")
    log.warning("rtorrent.unreachable", error=ConnectionError("https://u:hunter2@h refused"))
    try:
        raise ConnectionError("https://u:hunter2@h refused")
    except ConnectionError:
        log.exception("action.failed")
    text = out.getvalue()
    assert "ConnectionError" in text
    assert "hunter2" not in text
    assert text.count("***") >= 4


def test_console_in_colour_on_a_tty() -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w") as tty:
            configure_logging("console", "info", tty)
            structlog.get_logger().info("poll.done")
            assert b"\x1b[" in os.read(leader, 4096)
    finally:
        os.close(leader)


class _BrokenPipe(io.StringIO):
    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failing_stream_does_not_raise(fmt: LogFormat) -> None:
    closed = io.StringIO()
    closed.close()
    for stream in (closed, _BrokenPipe()):
        configure_logging(fmt, "info", stream)
        structlog.get_logger().error("daemon.stopping")
