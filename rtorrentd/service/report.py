"""A `Plan` for people (an aligned table and a total line) and for programs (JSON).

Values are shown by their kind in the vocabulary: durations as `14d3h`, sizes in
KiB/MiB/GiB, rates in KiB/s, ratios with two decimals, timestamps as UTC dates, so a
line explains its decision at a glance (`ratio=2.13 seeding_time=14d3h`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

from rtorrentd.config.model import SETTING, Action
from rtorrentd.engine.plan import Plan, Step
from rtorrentd.engine.space import SpaceOutcome
from rtorrentd.vocabulary import Kind, name_kinds

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_NAME_WIDTH = 40
_HEADER = ("action", "rule", "name", "size", "values")
# Step values besides the vocabulary's names: what a space step's deletion
# projects to free.
_OTHER_KINDS = {"frees": Kind.SIZE}


def human_bytes(n: int) -> str:
    """`n` bytes in 1024-based units with one decimal: `512 B`, `1.5 KiB`, `12.4 GiB`."""
    if abs(n) < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _BYTE_UNITS[1:]:
        value /= 1024
        # Decide on the rounded figure, so 1023.97 MiB reads `1.0 GiB`, not `1024.0 MiB`.
        if abs(round(value, 1)) < 1024 or unit == _BYTE_UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def human_duration(seconds: float) -> str:
    """`seconds` as its two largest units, rounded down: `14d3h`, `3h5m`, `42s`, `0s`."""
    if seconds < 0:
        return "-" + human_duration(-seconds)
    left = int(seconds)
    parts: list[str] = []
    for unit, size in _DURATION_UNITS:
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    shown = [p for p in parts if not p.startswith("0")] or ["0s"]
    return "".join(shown)


def format_plan_table(plan: Plan) -> str:
    """The plan as an aligned table (steps, then held steps), a total line and the notes."""
    rows = [_row(step, action_text(step)) for step in plan.steps]
    rows += [_row(step, f"{action_text(step)} (held)") for step in plan.held]
    lines = _align([_HEADER, *rows]) if rows else []
    space = [format_space(outcome) for outcome in plan.space]
    return "\n".join([*lines, format_totals(plan), *space, *plan.notes])


def format_space(outcome: SpaceOutcome) -> str:
    """`space /data: 41.2 GiB free < 50.0 GiB: 3 deletions → 83.0 GiB`, and why it
    falls short of the target when it does."""
    text = (
        f"space {outcome.path}: {human_bytes(outcome.free)} free"
        f" < {human_bytes(outcome.min_free)}: {outcome.deletions} deletions"
        f" → {human_bytes(outcome.projected)}"
    )
    if outcome.rule_freed:
        text += f" ({human_bytes(outcome.rule_freed)} of it by rule deletions)"
    if outcome.short:
        text += f", short of {human_bytes(outcome.target_free)}: no more candidates"
    if outcome.passed_over:
        text += f"; {outcome.passed_over} passed over (would free nothing)"
    return text


def action_text(step: Step) -> str:
    """`stop`, or with what it sets: `relabel "seeded"`, `throttle "slow"`."""
    if step.action in SETTING:
        return f'{step.action.value} "{step.target}"'
    return step.action.value


def format_totals(plan: Plan) -> str:
    """`3 to delete (12.4 GiB), 1 to stop, 1187 kept`: counts that are zero left out,
    except `kept`; the size is what the deletions free."""
    counts = Counter(step.action for step in plan.steps)
    freed = sum(step.size or 0 for step in plan.steps if step.action is Action.DELETE)
    parts = (
        (counts[Action.DELETE], f"to delete ({human_bytes(freed)})"),
        (counts[Action.TRASH], "to trash"),
        (counts[Action.REMOVE], "to remove"),
        (counts[Action.STOP], "to stop"),
        (counts[Action.RELABEL], "to relabel"),
        (counts[Action.THROTTLE], "to throttle"),
        (len(plan.held), "held back"),
    )
    shown = [f"{count} {text}" for count, text in parts if count]
    return ", ".join([*shown, f"{plan.kept} kept"])


def plan_to_json(plan: Plan) -> list[dict[str, object]]:
    """The steps to carry out as JSON-ready dicts (`rtorrentd plan --format json`)."""
    return [
        {
            "hash": step.hash,
            "name": step.name,
            "rule": step.rule,
            "action": step.action.value,
            "values": dict(step.why),
            **({"target": step.target} if step.action in SETTING else {}),
        }
        for step in plan.steps
    ]


def format_values(values: Sequence[tuple[str, object]]) -> str:
    """`name=value` pairs, each value shown by its kind: `ratio=2.13 seeding_time=14d3h`."""
    return " ".join(f"{name}={format_value(name, value)}" for name, value in values)


def format_value(name: str, value: object) -> str:
    """One value of the field or derived name `name`, compact; `?` when unknown."""
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(format_value(name, item) for item in value) or '""'
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int | float):
        return _NUMBER_FORMATS.get(name, _plain)(value)
    return str(value)


def _plain(value: float) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _timestamp(value: float) -> str:
    return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _bytes(value: float) -> str:
    return human_bytes(int(value))


def _rate(value: float) -> str:
    return human_bytes(int(value)) + "/s"


def _number_formats() -> dict[str, Callable[[float], str]]:
    """How to show each numeric name, by its kind (plain numbers by `_plain`)."""
    by_kind: dict[Kind, Callable[[float], str]] = {
        Kind.SIZE: _bytes,
        Kind.RATE: _rate,
        Kind.DURATION: human_duration,
        Kind.TIMESTAMP: _timestamp,
    }
    kinds = name_kinds() | _OTHER_KINDS
    return {name: by_kind[kind] for name, kind in kinds.items() if kind in by_kind}


_NUMBER_FORMATS: Mapping[str, Callable[[float], str]] = _number_formats()


def _quote(text: str) -> str:
    # Bare when it reads unambiguously in a `name=value` list; quoted otherwise.
    if text and not any(c.isspace() or c in "\"'=" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _row(step: Step, action: str) -> tuple[str, ...]:
    size = "?" if step.size is None else human_bytes(step.size)
    return (action, step.rule, _truncate(step.name), size, format_values(step.why))


def _truncate(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 1] + "…"


def _align(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, except size, right-aligned so units line up."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    return [_line(row, widths) for row in rows]


def _line(row: tuple[str, ...], widths: Sequence[int]) -> str:
    cells = [
        cell.rjust(width) if column == 3 else cell.ljust(width)
        for column, (cell, width) in enumerate(zip(row, widths, strict=True))
    ]
    return "  ".join(cells).rstrip()
