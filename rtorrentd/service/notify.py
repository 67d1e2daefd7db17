"""Sending `[notify]` messages with Apprise, never in a poll's way.

Imported only when `[notify]` is configured (the `notify` extra installs Apprise).
Each URL is a `Target` with a queue of its own and a task that drains it, so a
service that hangs or refuses delays neither a poll nor the other URLs:

- `post` only appends to each queue (at most `CAPACITY` messages; when full, the
  oldest is dropped with `notify.dropped`).
- Apprise's `notify` blocks, so it runs in a worker thread (a limiter of its own:
  a hung send never takes the threads the polls use), given `TIMEOUT` seconds;
  a thread that outlives it is waited for before the URL's next attempt, so at
  most one per URL exists.
- A failure is logged (`notify.failed`) and retried after a backoff (5 s
  doubling up to 5 min, `$RTORRENTD_BACKOFF_BASE` shortens the first); after
  `MAX_ATTEMPTS` the message is dropped (`notify.dropped`).
- Secrets stay out of the logs: a URL is named by its position and scheme, and
  what Apprise and urllib3 log while sending (their records carry URLs) is
  caught, stripped of every part of the URL that could be secret, and given as
  `notify.failed`'s `error`; nothing of theirs reaches stderr.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import anyio
import anyio.to_thread
import apprise

from rtorrentd.config.model import NotifySettings
from rtorrentd.config.notify import QUIET_LOGGERS, label, quiet_library_logs
from rtorrentd.logger import get_logger
from rtorrentd.redact import hide, url_secrets
from rtorrentd.service.instance import backoff_delays
from rtorrentd.service.notices import Message

log = get_logger("rtorrentd.service.notify")

CAPACITY = 100  # messages waiting per URL; beyond, the oldest goes
TIMEOUT = 60.0  # seconds one send may take before it counts as failed
MAX_ATTEMPTS = 12  # 5 s doubling, then every 5 min: about half an hour of trying
RETRY_LIMIT = 300.0  # seconds, the longest wait between attempts
_LEVELS = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}

Send = Callable[[Message], "str | None"]  # blocking; None: sent, else what went wrong

# The records of the send under way, per thread: Apprise runs a service in a
# thread of its own, with a copy of the caller's context.
_captured: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "rtorrentd_notify_captured", default=None
)


class _Capture(logging.Handler):
    """Keeps the warnings (and worse) of `QUIET_LOGGERS` for the send that logs
    them, and the exceptions Apprise logs at debug level ("Socket Exception: …
    Connection refused"), which say why better than its warning does."""

    def emit(self, record: logging.LogRecord) -> None:
        records = _captured.get()
        if records is None:
            return
        text = record.getMessage()
        if record.levelno >= logging.WARNING or "Exception" in text:
            records.append(text)


_CAPTURE = _Capture()


def capture_library_logs() -> None:
    """Route the libraries' records to the send that caused them, nowhere else."""
    quiet_library_logs()
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if _CAPTURE not in logger.handlers:
            logger.addHandler(_CAPTURE)
    # Apprise's exceptions come at debug level; no handler but ours sees them.
    logging.getLogger("apprise").setLevel(logging.DEBUG)


@contextmanager
def captured() -> Iterator[list[str]]:
    """The library warnings logged while inside, in this context and its copies."""
    records: list[str] = []
    token = _captured.set(records)
    try:
        yield records
    finally:
        _captured.reset(token)


def apprise_send(url: str) -> Send:
    """A blocking send to `url` with Apprise: None when sent, else why not (with
    every secret part of the URL hidden)."""
    sender = apprise.Apprise(asset=apprise.AppriseAsset(app_id="rtorrentd"))
    if not sender.add(url):
        raise ValueError("Apprise cannot use the URL")  # `check` refuses it first
    secrets = url_secrets(url)

    def send(message: Message) -> str | None:
        with captured() as records:
            try:
                # bool(): Apprise 1.x answers a bool, 2.x a result whose truth is the same.
                sent = bool(
                    sender.notify(
                        body=message.body, title=message.title, notify_type=_LEVELS[message.level]
                    )
                )
            except Exception as exc:  # a plugin's bug: the daemon goes on
                records.append(f"{type(exc).__name__}: {exc}")
                sent = False
        if sent:
            return None
        return hide("; ".join(records) or "Apprise reported a failure", secrets)

    return send


@dataclass(frozen=True, slots=True)
class Pending:
    """A message waiting to be sent, and how often sending it failed."""

    message: Message
    attempts: int = 0


class Target:
    """One URL: its queue and the task that sends what is in it."""

    def __init__(
        self, name: str, send: Send, *, base: float, timeout: float, capacity: int = CAPACITY
    ) -> None:
        self.name, self.send, self.base, self.timeout = name, send, base, timeout
        self.capacity = max(2, capacity)  # the message being sent, and one waiting
        self.queue: deque[Pending] = deque()
        self.sending: Message | None = None  # the head of the queue, while being sent
        self.wake = anyio.Event()
        self.idle = anyio.Event()  # set while the queue is empty
        self.idle.set()
        self.returned = threading.Event()  # the last send's thread has returned
        self.returned.set()
        self.limiter = anyio.CapacityLimiter(1)

    def put(self, message: Message) -> None:
        """Queue `message`; when full, drop the oldest waiting (logged), not the
        one being sent."""
        if len(self.queue) >= self.capacity:
            oldest = 1 if self.queue[0].message is self.sending else 0
            dropped = self.queue[oldest]
            del self.queue[oldest]
            log.warning(
                "notify.dropped",
                target=self.name,
                kind=dropped.message.event,
                title=dropped.message.title,
                reason=f"{self.capacity} messages waiting",
            )
        self.queue.append(Pending(message))
        self.idle = anyio.Event() if self.idle.is_set() else self.idle
        self.wake.set()

    async def run(self) -> None:
        """Send what is queued, oldest first, retrying each after a backoff."""
        delays: Iterator[float] | None = None
        while True:
            if not self.queue:
                self.idle.set()
                self.wake = anyio.Event()
                await self.wake.wait()
                continue
            pending = self.queue[0]
            self.sending = pending.message
            try:
                error = await self.attempt(pending.message)
            finally:
                self.sending = None
            if error is None:
                delays = None
                log.info("notify.sent", target=self.name, kind=pending.message.event)
                self.remove(pending)
                continue
            pending = replace(pending, attempts=pending.attempts + 1)
            if pending.attempts >= MAX_ATTEMPTS:
                reason = f"not sent after {MAX_ATTEMPTS} attempts"
                log.error(
                    "notify.dropped",
                    target=self.name,
                    kind=pending.message.event,
                    title=pending.message.title,
                    reason=reason,
                    error=error,
                )
                self.remove(pending)
                delays = None
                continue
            if self.queue and self.queue[0].message is pending.message:
                self.queue[0] = pending
            delays = delays or backoff_delays(self.base, RETRY_LIMIT)
            retry_in = next(delays)
            log.warning(
                "notify.failed",
                target=self.name,
                kind=pending.message.event,
                attempt=pending.attempts,
                error=error,
                retry_in=retry_in,
            )
            await anyio.sleep(retry_in)

    def remove(self, pending: Pending) -> None:
        """Take `pending` off the queue, unless a newer message pushed it out."""
        if self.queue and self.queue[0].message is pending.message:
            self.queue.popleft()

    async def attempt(self, message: Message) -> str | None:
        """One send in a worker thread, given `timeout` seconds: None when sent."""
        if not self.returned.is_set():
            return "the attempt before has not returned yet"
        returned = self.returned = threading.Event()

        def send() -> str | None:
            try:
                return self.send(message)
            finally:
                returned.set()

        with anyio.move_on_after(self.timeout) as scope:
            error = await anyio.to_thread.run_sync(
                send, abandon_on_cancel=True, limiter=self.limiter
            )
        if scope.cancelled_caught:
            return f"no answer within {self.timeout:g}s"
        return error


class Notifications:
    """The daemon's outbox (`notices.Outbox`): a `Target` per URL."""

    def __init__(
        self,
        settings: NotifySettings,
        *,
        base: float = 5.0,
        timeout: float = TIMEOUT,
        capacity: int = CAPACITY,
    ) -> None:
        capture_library_logs()
        self.targets = [
            Target(
                label(url, index), apprise_send(url), base=base, timeout=timeout, capacity=capacity
            )
            for index, url in enumerate(settings.urls, 1)
        ]

    def post(self, message: Message) -> None:
        """Queue `message` for every URL; returns at once."""
        for target in self.targets:
            target.put(message)

    async def run(self) -> None:
        """Every URL's sender, until cancelled."""
        async with anyio.create_task_group() as tasks:
            for target in self.targets:
                tasks.start_soon(target.run, name=f"notify {target.name}")

    async def flush(self, limit: float) -> bool:
        """Wait up to `limit` seconds for every queue to empty; False if one did not
        (what is left is logged, `notify.dropped`)."""
        with anyio.move_on_after(limit):
            for target in self.targets:
                await target.idle.wait()
        left = sum(len(t.queue) for t in self.targets)
        if left:
            log.warning("notify.dropped", messages=left, reason="the daemon is stopping")
        return not left
