"""What became of each step, and the one log event that says so."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rtorrentd.deletion.model import Deletion, Outcome
from rtorrentd.engine.plan import Step
from rtorrentd.logger import get_logger

log = get_logger("rtorrentd.deletion.executor")


class Result(Enum):
    """What became of one step; the value is the `result` field of its log event."""

    DONE = "done"
    DRY_RUN = "dry-run"
    SKIPPED = "skipped"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StepResult:
    """What became of one step, and why (`reason`, for the log).

    `kept_shared` are files of a deleted torrent left on disk because another
    loaded torrent lists them.
    """

    step: Step
    result: Result
    reason: str = ""
    freed_bytes: int = 0
    kept_shared: tuple[str, ...] = ()


def summary(deletion: Deletion, outcome: Outcome | None = None) -> str:
    """What was (or would be) left on disk, and why; "" when nothing was."""
    notes = []
    if deletion.kept_shared:
        paths = ", ".join(deletion.kept_shared)
        notes.append(
            f"kept {len(deletion.kept_shared)} file(s) another loaded torrent uses: {paths}"
        )
    gone = deletion.already_gone + (outcome.already_gone if outcome else ())
    if gone:
        notes.append(f"{len(gone)} file(s) already gone (deleted earlier, or moved away)")
    if outcome is not None and outcome.skipped_dirs:
        dirs = "; ".join(f"{n.path}: {n.reason}" for n in outcome.skipped_dirs)
        notes.append(f"directories kept: {dirs}")
    return join(*notes)


def join(*notes: str) -> str:
    """The non-empty notes, one sentence."""
    return "; ".join(n for n in notes if n)


_EVENTS = {
    Result.DONE: "action.done",
    Result.DRY_RUN: "action.planned",
    Result.SKIPPED: "action.skipped",
    Result.REFUSED: "action.refused",
    Result.FAILED: "action.failed",
}
_LEVELS = {Result.REFUSED: "warning", Result.FAILED: "error"}
CUT_SHORT = "cut short by the poll's deadline (rtorrent too slow?); the next poll resumes it"


def log_result(result: StepResult, *, dry_run: bool) -> None:
    """One event per step: its outcome names the event, its level the priority.

    `dry_run` is the poll's, so a refusal in a dry run says so too.
    """
    step = result.step
    getattr(log, _LEVELS.get(result.result, "info"))(
        _EVENTS[result.result],
        action=step.action.value,
        hash=step.hash,
        name=step.name,
        rule=step.rule,
        values=dict(step.why),
        freed_bytes=result.freed_bytes,
        result=result.result.value,
        reason=result.reason or None,
        dry_run=dry_run,
        kept_shared=list(result.kept_shared) or None,
    )
