"""sd_notify and journal detection, with the standard library only.

The notify protocol is one datagram per message on the AF_UNIX socket named by
`$NOTIFY_SOCKET`, holding newline-separated `KEY=value` assignments (see
sd_notify(3)). Strategy: a fresh socket per message, no state kept between
messages, and every sending error swallowed. Notification is advisory; the
daemon must never die, or block for long, because the manager's socket vanished.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

# A full receive queue would block a blocking sendto() for ever; the daemon calls
# this from its event loop, so give up quickly instead.
SEND_TIMEOUT = 1.0

_LINE_BREAKS = re.compile(r"[\r\n\x00]+")


def notify_address(value: str | None) -> str | bytes | None:
    """The socket address `$NOTIFY_SOCKET` names, or None if there is none we can use.

    `/path` is a filesystem socket; `@name` is an abstract socket, whose address
    starts with a NUL byte. Other forms (such as `vsock:`) are not supported.
    """
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_usec(env: Mapping[str, str], pid: int) -> int | None:
    """`$WATCHDOG_USEC` if it is meant for process `pid`, else None.

    systemd sets `$WATCHDOG_PID` to the process it watches; a child that inherits
    the environment must not ping on the parent's behalf.
    """
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock `RELOADING=1` wants."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def one_line(text: str) -> str:
    """`text` with line breaks (and NULs) folded to single spaces, for `STATUS=`."""
    return _LINE_BREAKS.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class Notifier:
    """Sends state changes to the service manager; does nothing outside systemd.

    `address` is the notify socket (None: not under systemd, or no notify
    socket); `watchdog_usec` is the watchdog timeout meant for this process.
    """

    address: str | bytes | None = None
    watchdog_usec: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, pid: int | None = None) -> Notifier:
        """A notifier for the socket and watchdog the environment describes."""
        own_pid = os.getpid() if pid is None else pid
        return cls(notify_address(env.get("NOTIFY_SOCKET")), watchdog_usec(env, own_pid))

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify."""
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` assignments as one message; True if it was sent.

        Errors (socket gone, manager not listening, queue full) are swallowed:
        the caller may log a False, but must not fail because of it.
        """
        if self.address is None:
            return False
        message = "\n".join(assignments).encode("utf-8", errors="replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT)
                sock.sendto(message, self.address)
        except OSError:
            return False
        return True

    def ready(self) -> bool:
        """Start-up (or a reload) is complete."""
        return self.notify("READY=1")

    def reloading(self, monotonic_usec: int) -> bool:
        """A reload has begun at `monotonic_usec` (see `monotonic_usec()`).

        Send `ready()` when it is done: systemd keeps the unit "reloading" until then.
        """
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """Set the one-line status `systemctl status` shows."""
        return self.notify(f"STATUS={one_line(text)}")

    def watchdog(self) -> bool:
        """Tell the watchdog the daemon is alive."""
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """How often to call `watchdog()`, in seconds: half the timeout; None if unwatched."""
        if self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000


def journal_stream_is_stderr(env: Mapping[str, str] = os.environ, fd: int = 2) -> bool:
    """Whether `fd` (stderr by default) is the journal stream systemd connected.

    systemd sets `$JOURNAL_STREAM` to "<device>:<inode>" of that stream; comparing
    with fstat() tells it apart from a stream the daemon's own caller redirected
    (the variable is inherited, the file descriptor may not be).
    """
    device, sep, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not sep:
        return False
    try:
        stat = os.fstat(fd)
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False
