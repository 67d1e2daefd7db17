"""The one-line texts the daemon reports: systemd STATUS= lines, and what a reload
changed. Pure."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from rtorrentd.config.model import Action, Config, SpacePolicy
from rtorrentd.deletion.results import Result
from rtorrentd.redact import redact_url
from rtorrentd.service.poll import PollResult
from rtorrentd.service.report import human_bytes, human_duration

_REASON_CHARS = 100
_DONE_WORDS: Mapping[Action, str] = {
    Action.DELETE: "deleted",
    Action.TRASH: "trashed",
    Action.REMOVE: "removed",
    Action.STOP: "stopped",
    Action.RELABEL: "relabelled",
    Action.THROTTLE: "throttled",
}


def clock(unix: float) -> str:
    """Local wall-clock time `HH:MM`, as `systemctl status` readers think of it."""
    return time.strftime("%H:%M", time.localtime(unix))


def short_reason(exc: BaseException) -> str:
    """The first line of an error's message, cut to fit a status line."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def _seconds(delay: float) -> str:
    return f"{delay:.1f}s" if delay < 10 else human_duration(delay)


def status_after_poll(result: PollResult, *, at: float, next_at: float) -> str:
    """`1234 torrents, 3 deleted (12.4 GiB) at 14:05, next 14:10`."""
    parts = [f"{result.torrents} torrents"]
    for action, word in _DONE_WORDS.items():
        done = [r for r in result.results if r.result is Result.DONE and r.step.action is action]
        freed = sum(r.freed_bytes for r in done)
        if done:
            parts.append(f"{len(done)} {word}" + (f" ({human_bytes(freed)})" if freed else ""))
    counts = {
        "planned (dry run)": sum(r.result is Result.DRY_RUN for r in result.results),
        "failed": sum(r.result in (Result.FAILED, Result.REFUSED) for r in result.results),
        "held": len(result.plan.held),
    }
    parts += [f"{n} {word}" for word, n in counts.items() if n]
    return f"{', '.join(parts)} at {clock(at)}, next {clock(next_at)}"


def status_unreachable(since: float, reason: str, retry_in: float) -> str:
    """`rtorrent unreachable since 14:05: <reason>, retry in 40s`."""
    return f"rtorrent unreachable since {clock(since)}: {reason}, retry in {_seconds(retry_in)}"


def _policy_key(policy: SpacePolicy) -> tuple[object, ...]:
    # Conditions compare by text: their compiled closures are new objects each load.
    p = policy
    return (p.path, p.min_free, p.target_free, p.candidates.text, p.order, p.action)


_SETTINGS: Mapping[str, Callable[[Config], object]] = {
    "interval": lambda c: human_duration(c.daemon.interval),
    "url": lambda c: redact_url(c.rtorrent.url),
    "dry_run": lambda c: c.daemon.dry_run,
}
_SECTIONS: Mapping[str, Callable[[Config], object]] = {
    "rtorrent": lambda c: replace(c.rtorrent, url=""),
    "daemon": lambda c: replace(c.daemon, interval=0.0, dry_run=False),
    "safety": lambda c: c.safety,
    "space": lambda c: tuple(_policy_key(p) for p in c.space),
}


def config_changes(old: Config, new: Config) -> dict[str, object]:
    """What a reload changes, as fields of `config.reloaded`; empty if nothing.

    Rules are named when added, removed or changed (condition or action), with
    `rules_reordered` when the order changed (the first match wins); `interval`,
    `url` and `dry_run` read "old → new"; other changed sections are listed.
    """
    before = {r.name: (r.when.text, r.action) for r in old.rules}
    after = {r.name: (r.when.text, r.action) for r in new.rules}
    changes: dict[str, object] = {
        "rules_added": [n for n in after if n not in before],
        "rules_removed": [n for n in before if n not in after],
        "rules_changed": [n for n in after if n in before and after[n] != before[n]],
        "rules_reordered": [n for n in before if n in after] != [n for n in after if n in before],
    }
    for key, get in _SETTINGS.items():
        if get(old) != get(new):
            changes[key] = f"{get(old)} → {get(new)}"
    changes["also_changed"] = [name for name, get in _SECTIONS.items() if get(old) != get(new)]
    return {key: value for key, value in changes.items() if value}


_NAMES_SHOWN = 5


def fleet_status(count: int, down: Sequence[str], name: str, text: str) -> str:
    """`3 instances, 1 unreachable (alice); roger: 1234 torrents at 14:05, next 14:10`:
    the whole daemon at a glance, then the instance that polled last."""
    head = f"{count} instances"
    if down:
        shown = ", ".join(down[:_NAMES_SHOWN]) + (", …" if len(down) > _NAMES_SHOWN else "")
        head += f", {len(down)} unreachable ({shown})"
    return f"{head}; {name}: {text}"
