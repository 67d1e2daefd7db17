"""The daemon's stop state, shared by every instance's loop.

One process, one stop: a stop signal ends every instance, and a second one exits
the process at once, unless a deletion is unlinking in some instance (a worker
thread cannot be stopped half-way); then the process exits right after that
deletion's outcome is logged. So the count of deletions under way is the
process's, not an instance's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_OK, EXIT_FORCED = 0, 1


class Lifecycle:
    """Whether a stop was asked for, and the deletions that must finish first."""

    def __init__(self) -> None:
        self.stopping = False
        self.forced = False  # a second stop signal came
        self.unlinks = 0  # deletions between their first unlink and their outcome

    def is_stopping(self) -> bool:
        """Whether a stop signal has come (the executor asks before each step, so
        after the previous step was logged: the moment a deferred forced exit waits for)."""
        self.exit_if_forced()
        return self.stopping

    @contextmanager
    def unlinking(self) -> Iterator[None]:
        """Held while a deletion unlinks and erases: a second stop signal waits."""
        self.unlinks += 1
        try:
            yield
        finally:
            self.unlinks -= 1

    def force(self) -> None:
        """A second stop signal: exit now, or once no deletion is unlinking."""
        self.forced = True
        self.exit_if_forced()

    def exit_if_forced(self) -> None:
        """Exit now if a second stop signal came and no deletion is unlinking."""
        if self.forced and not self.unlinks:
            os._exit(EXIT_FORCED)
