"""sd_notify against real datagram sockets, and journal stream detection."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtorrentd.service import systemd
from rtorrentd.service.systemd import Notifier, journal_stream_is_stderr, notify_address, one_line

PID = os.getpid()


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


@pytest.fixture(params=["path", "abstract"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A socket standing in for systemd's, and the `$NOTIFY_SOCKET` naming it."""
    if request.param == "path":
        path = str(tmp_path / "notify")
        with _receiver(path) as sock:
            yield sock, path
    else:
        name = f"rtorrentd-test-{uuid.uuid4().hex}"
        with _receiver(b"\0" + name.encode()) as sock:
            yield sock, "@" + name


def _notifier(notify_socket: str) -> Notifier:
    return Notifier.from_env({"NOTIFY_SOCKET": notify_socket})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@/org/freedesktop/systemd1/notify/1", b"\0/org/freedesktop/systemd1/notify/1"),
        ("relative/path", None),
        ("vsock:2:1234", None),
    ],
)
def test_notify_address(value: str | None, expected: str | bytes | None) -> None:
    assert expected == notify_address(value)


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda n: n.ready(), b"READY=1"),
        (lambda n: n.reloading(123456789), b"RELOADING=1\nMONOTONIC_USEC=123456789"),
        (lambda n: n.stopping(), b"STOPPING=1"),
        (lambda n: n.watchdog(), b"WATCHDOG=1"),
        (lambda n: n.status("polled 12 torrents"), b"STATUS=polled 12 torrents"),
        (lambda n: n.status("two\nlines\r\n"), b"STATUS=two lines"),
        (lambda n: n.status("caf\u00e9 \udcff"), "STATUS=caf\u00e9 ?".encode()),
    ],
)
def test_messages_reach_the_manager(
    manager: tuple[socket.socket, str], send: Callable[[Notifier], bool], expected: bytes
) -> None:
    sock, notify_socket = manager
    notifier = _notifier(notify_socket)
    assert notifier.enabled
    assert send(notifier) is True
    assert expected == sock.recv(4096)


def test_one_message_per_call(manager: tuple[socket.socket, str]) -> None:
    sock, notify_socket = manager
    notifier = _notifier(notify_socket)
    notifier.ready()
    notifier.status("idle")
    assert [b"READY=1", b"STATUS=idle"] == [sock.recv(4096), sock.recv(4096)]


def test_unset_means_nothing_sent_and_no_error() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False
    assert notifier.watchdog_interval() is None


def test_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)):
        pass
    path.unlink()
    notifier = _notifier(str(path))
    assert notifier.ready() is False
    assert notifier.stopping() is False


def test_unbound_abstract_socket_is_not_an_error() -> None:
    assert _notifier(f"@rtorrentd-test-nobody-{uuid.uuid4().hex}").ready() is False


def test_socket_that_is_not_a_socket_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    path.write_text("")
    assert _notifier(str(path)).ready() is False


def test_a_manager_that_stops_reading_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The receive queue fills; sendto() would then wait for ever without the timeout.
    monkeypatch.setattr(systemd, "SEND_TIMEOUT", 0.05)
    path = str(tmp_path / "notify")
    with _receiver(path):
        notifier = _notifier(path)
        started = time.monotonic()
        sent = 0
        while notifier.status("x" * 1000) and sent < 100_000:
            sent += 1
    assert sent < 100_000
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "300000000"}, 150.0),
        ({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": str(PID)}, 150.0),
        ({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": str(PID + 1)}, None),
        ({"WATCHDOG_USEC": "1000"}, 0.0005),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "5min"}, None),
        ({"WATCHDOG_PID": str(PID)}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert expected == Notifier.from_env(env).watchdog_interval()


def test_watchdog_interval_for_another_pid() -> None:
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}
    assert 1.0 == Notifier.from_env(env, pid=4242).watchdog_interval()
    assert Notifier.from_env(env, pid=4243).watchdog_interval() is None


def test_monotonic_usec_is_the_monotonic_clock() -> None:
    before = time.monotonic_ns() // 1000
    now = systemd.monotonic_usec()
    after = time.monotonic_ns() // 1000
    assert before <= now <= after


@given(st.text())
def test_one_line_has_no_line_breaks(text: str) -> None:
    line = one_line(text)
    assert not {"\n", "\r", "\0"} & set(line)
    assert line == line.strip()


@pytest.fixture
def stream_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "stream", os.O_WRONLY | os.O_CREAT)
    yield fd
    os.close(fd)


def test_journal_stream_matches_the_fd(stream_fd: int) -> None:
    stat = os.fstat(stream_fd)
    env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
    assert journal_stream_is_stderr(env, stream_fd)


@pytest.mark.parametrize("value", [None, "", "garbage", "1:", ":2", "a:b", "0:0"])
def test_journal_stream_does_not_match(stream_fd: int, value: str | None) -> None:
    env = {} if value is None else {"JOURNAL_STREAM": value}
    assert not journal_stream_is_stderr(env, stream_fd)


def test_journal_stream_inherited_but_stderr_redirected(tmp_path: Path, stream_fd: int) -> None:
    (tmp_path / "other").write_text("")
    other = os.stat(tmp_path / "other")
    env = {"JOURNAL_STREAM": f"{other.st_dev}:{other.st_ino}"}
    assert not journal_stream_is_stderr(env, stream_fd)


def test_journal_stream_on_a_closed_fd(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "stream", os.O_WRONLY | os.O_CREAT)
    stat = os.fstat(fd)
    os.close(fd)
    assert not journal_stream_is_stderr({"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}, fd)
