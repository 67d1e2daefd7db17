"""One log event per step: its name and level from the outcome, dry_run from the poll."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from rtorrentd.config.model import Action
from rtorrentd.deletion.results import Result, StepResult, log_result
from rtorrentd.engine.plan import Decision, Step

STEP = Step("A" * 40, "x.iso", Decision(Action.DELETE, "old", ("ratio",)), (2.5,), 100)


@pytest.mark.parametrize(
    ("result", "event", "level"),
    [
        (Result.DONE, "action.done", "info"),
        (Result.DRY_RUN, "action.planned", "info"),
        (Result.SKIPPED, "action.skipped", "info"),
        (Result.REFUSED, "action.refused", "warning"),
        (Result.FAILED, "action.failed", "error"),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_each_outcome_is_one_event_that_says_whether_the_poll_was_a_dry_run(
    result: Result, event: str, level: str, dry_run: bool
) -> None:
    with capture_logs() as logs:
        log_result(StepResult(STEP, result, "why"), dry_run=dry_run)
    (logged,) = logs
    expected = {"event": event, "log_level": level, "dry_run": dry_run, "result": result.value}
    assert expected == {k: logged[k] for k in expected}
    assert ("why", {"ratio": 2.5}) == (logged["reason"], logged["values"])
