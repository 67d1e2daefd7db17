"""Loggers that import structlog at their first event, not at import.

Why: structlog pulls in most of the standard library's async and typing machinery
(~30 ms, more with `rich` installed), a tenth of a one-shot `rtorrentd plan`; a plan
that logs nothing should not pay for it (issue 15). Every module takes its logger
here, never from structlog itself (an import contract enforces it).

A one-shot command registers how logging is set up (`configure_on_first_event`):
the first event runs it, so a warning still reaches stderr formatted, never stdout
(structlog's unconfigured default) inside `plan --format json`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["configure_on_first_event", "get_logger"]

# The set-up to run before the first event of a one-shot command, if any.
_pending: list[Callable[[], None]] = []
_setting_up = threading.Lock()


class _Lazy:
    """Stands for `structlog.get_logger(name)` until an event is logged."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if _pending:
            _set_up()
        logger = self._logger
        if logger is None:
            import structlog

            # structlog's own proxy: it follows any later reconfiguration (a reload,
            # a test's capture_logs), as a module-level structlog logger would.
            logger = self._logger = structlog.get_logger(self._name)
        return getattr(logger, method)


def _set_up() -> None:
    """Run the pending set-up once; an event logged meanwhile by another thread
    (a worker measuring the disk) waits for it."""
    with _setting_up:
        while _pending:
            _pending.pop()()


def get_logger(name: str) -> FilteringBoundLogger:
    """The logger for `name`, structlog's once the first event is logged."""
    return cast("FilteringBoundLogger", _Lazy(name))  # duck-typed stand-in


@contextmanager
def configure_on_first_event(configure: Callable[[], None]) -> Iterator[None]:
    """Run `configure` before the first event logged within the block, if any.

    Scoped to the block, so that a command that logged nothing leaves no set-up
    behind to fire later (in a test process, inside another test's capture).
    """
    with _setting_up:
        _pending[:] = [configure]
    try:
        yield
    finally:
        with _setting_up:
            _pending.clear()
