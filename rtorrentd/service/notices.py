"""What an instance tells people through `[notify]`, as messages.

Pure: `Notices` turns one instance's happenings into `Message`s and posts them
to an `Outbox` (`service.notify`, which sends them with Apprise, off the poll's
path). What is worth a message, each at most once per poll:

- `deleted`, `removed`, `stopped`: one message per poll listing the torrents,
  their rules and (deletions) the bytes freed;
- `refused`, `failed`: one message per poll listing the steps, each torrent only
  when it was not refused (failed) at the poll before: a refusal that stands is
  told once, not every five minutes;
- `space_low`: a policy's filesystem went below its `min_free` (told again only
  after a poll found it above);
- `unreachable`, `recovered`: on the change only, as the log events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rtorrentd.config.model import Action, NotifySettings
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine.space import SpaceOutcome
from rtorrentd.service.poll import PollResult
from rtorrentd.service.report import format_space, human_bytes

MAX_LINES = 25  # of a message's body; the rest is counted ("… and 12 more")

# The event each carried-out action is told as.
DONE_EVENTS = {Action.DELETE: "deleted", Action.REMOVE: "removed", Action.STOP: "stopped"}
_DONE_WORDS = {
    Action.DELETE: "deleted",
    Action.REMOVE: "removed from rtorrent (data kept)",
    Action.STOP: "stopped",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: `event` is one of `config.model.EVENTS`; `level` is
    Apprise's notify type (info, success, warning, failure)."""

    event: str
    title: str
    body: str
    level: str = "info"


class Outbox(Protocol):
    """Takes messages without waiting (`service.notify.Notifications`)."""

    def post(self, message: Message) -> None:
        """Queue `message` for sending; returns at once."""


class Sender(Outbox, Protocol):
    """An outbox with its sending to run, and to finish at a stop."""

    async def run(self) -> None:
        """Send what is posted, until cancelled."""

    async def flush(self, limit: float) -> bool:
        """Wait up to `limit` seconds for what is queued to go; False if some is left."""


def plural(count: int, one: str, many: str = "") -> str:
    """`1 torrent`, `3 torrents`."""
    return f"{count} {one if count == 1 else many or one + 's'}"


def printable(text: str) -> str:
    """`text` on one line: a torrent's name may hold any character."""
    return "".join(c if c.isprintable() else "?" for c in text)


def body(lines: Sequence[str]) -> str:
    """At most `MAX_LINES` lines, the rest counted."""
    if len(lines) <= MAX_LINES:
        return "\n".join(lines)
    shown = MAX_LINES - 1
    return "\n".join([*lines[:shown], f"… and {len(lines) - shown} more"])


def done_message(prefix: str, action: Action, done: Sequence[StepResult]) -> Message:
    """The torrents one action was carried out on in one poll, in one message."""
    event, words = DONE_EVENTS[action], _DONE_WORDS[action]
    title = f"{prefix}: {plural(len(done), 'torrent')} {words}"
    if action is Action.DELETE:
        freed = sum(r.freed_bytes for r in done)
        title += f", {human_bytes(freed)} freed"
        lines = [
            f"{printable(r.step.name)}: {human_bytes(r.freed_bytes)} (rule {r.step.rule})"
            for r in done
        ]
    else:
        lines = [f"{printable(r.step.name)} (rule {r.step.rule})" for r in done]
    return Message(event, title, body(lines), "success" if action is Action.DELETE else "info")


def problem_message(
    prefix: str, event: str, results: Sequence[StepResult], dry_run: bool
) -> Message:
    """Steps refused or failed in one poll, in one message."""
    verb = "refused" if event == "refused" else "failed"
    title = f"{prefix}: {plural(len(results), 'step')} {verb}" + " (dry run)" * dry_run
    lines = [
        f"{r.step.action.value} {printable(r.step.name)} (rule {r.step.rule}): {r.reason}"
        for r in results
    ]
    return Message(event, title, body(lines), "warning" if verb == "refused" else "failure")


def space_message(prefix: str, outcomes: Sequence[SpaceOutcome]) -> Message:
    """The policies whose filesystems went below `min_free`, in one message."""
    paths = ", ".join(o.path for o in outcomes)
    title = f"{prefix}: space low on {paths}"
    return Message("space_low", title, body([format_space(o) for o in outcomes]), "warning")


def _key(result: StepResult) -> tuple[str, str, str]:
    return (result.step.hash, result.step.action.value, result.step.rule)


class Notices:
    """One instance's messages, and what it has told already (refusals standing,
    filesystems low) so that a lasting state is told once."""

    def __init__(self, name: str | None, settings: NotifySettings, outbox: Outbox) -> None:
        self.prefix = f"{settings.title} {name}" if name else settings.title
        self.events, self.outbox = frozenset(settings.events), outbox
        self.standing: dict[str, frozenset[tuple[str, str, str]]] = {}
        self.low: frozenset[str] = frozenset()

    def post(self, message: Message) -> None:
        """Send `message` if its event is one `[notify] events` lists."""
        if message.event in self.events:
            self.outbox.post(message)

    def polled(self, result: PollResult, dry_run: bool) -> None:
        """After a poll that worked: what was done, refused, failed; space low."""
        for action in DONE_EVENTS:
            done = [
                r for r in result.results if r.result is Result.DONE and r.step.action is action
            ]
            if done:
                self.post(done_message(self.prefix, action, done))
        for event, kind in (("refused", Result.REFUSED), ("failed", Result.FAILED)):
            new = self.new_problems(event, [r for r in result.results if r.result is kind])
            if new:
                self.post(problem_message(self.prefix, event, new, dry_run))
        self.space(result.plan.space)

    def new_problems(self, event: str, results: Iterable[StepResult]) -> list[StepResult]:
        """The `results` not already standing at the poll before; they stand now."""
        results = list(results)
        before = self.standing.get(event, frozenset())
        self.standing[event] = frozenset(map(_key, results))
        return [r for r in results if _key(r) not in before]

    def space(self, outcomes: Sequence[SpaceOutcome]) -> None:
        """Tell of the filesystems that went below `min_free` since the poll before."""
        fresh = [o for o in outcomes if o.path not in self.low]
        self.low = frozenset(o.path for o in outcomes)
        if fresh:
            self.post(space_message(self.prefix, fresh))

    def unreachable(self, url: str, reason: str) -> None:
        """rtorrent stopped answering (`url` shown with its password hidden)."""
        text = f"{url}: {reason}. Retrying; a message follows when it answers again."
        self.post(Message("unreachable", f"{self.prefix}: rtorrent unreachable", text, "failure"))

    def recovered(self, url: str, down_for: str) -> None:
        """rtorrent answers again after `down_for`."""
        text = f"{url} answers again, after {down_for}."
        title = f"{self.prefix}: rtorrent reachable again"
        self.post(Message("recovered", title, text, "success"))
