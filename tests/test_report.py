"""A plan for people (table, total line, notes) and for programs (JSON)."""

from __future__ import annotations

import json

import pytest

from rtorrentd.config.model import Action
from rtorrentd.engine.plan import Decision, Plan, Step
from rtorrentd.service.report import (
    format_plan_table,
    format_totals,
    format_value,
    human_bytes,
    human_duration,
    plan_to_json,
)
from rtorrentd.vocabulary import Kind, name_kinds

GIB = 1024**3
MIB = 1024**2
H1, H2, H3 = "1" * 40, "2" * 40, "3" * 40
DELETE_OLD = Step(
    H1,
    "Ubuntu 24.04 Desktop amd64",
    Decision(Action.DELETE, "old", ("ratio", "seeding_time")),
    (2.134, 14 * 86400 + 3 * 3600 + 120.0),
    int(6.2 * GIB),
)
STOP_RATIO = Step(
    H2,
    "A.Rather.Long.Release.Name.That.Goes.On.And.On.2160p",
    Decision(Action.STOP, "ratio-met", ("ratio",)),
    (2.5,),
    700 * MIB,
)
HELD = Step(H3, "x", Decision(Action.DELETE, "old", ("label",)), ("tv shows",), None)
PLAN = Plan(
    steps=(DELETE_OLD, STOP_RATIO),
    held=(HELD,),
    notes=("max_deletes_per_poll = 1: 2 deletions, 1 wait for the next poll",),
    total=10,
    kept=7,
)


# Wider than the code: a table as people see it, aligned.
TABLE = """\
action         rule       name                                           size  values
delete         old        Ubuntu 24.04 Desktop amd64                  6.2 GiB  ratio=2.13 seeding_time=14d3h
stop           ratio-met  A.Rather.Long.Release.Name.That.Goes.On…  700.0 MiB  ratio=2.50
delete (held)  old        x                                                 ?  label="tv shows"
1 to delete (6.2 GiB), 1 to stop, 1 held back, 7 kept
max_deletes_per_poll = 1: 2 deletions, 1 wait for the next poll"""  # noqa: E501


def test_table() -> None:
    assert TABLE == format_plan_table(PLAN)


def test_an_empty_plan_is_only_its_total() -> None:
    assert "1187 kept" == format_plan_table(Plan((), (), (), total=1187, kept=1187))


def _steps(action: Action, count: int, size: int) -> tuple[Step, ...]:
    return tuple(Step(f"{n:040X}", "t", Decision(action, "r", ()), (), size) for n in range(count))


@pytest.mark.parametrize(
    ("steps", "held", "kept", "expected"),
    [
        pytest.param(
            _steps(Action.DELETE, 3, int(12.4 * GIB) // 3) + _steps(Action.STOP, 1, GIB),
            0,
            1187,
            "3 to delete (12.4 GiB), 1 to stop, 1187 kept",
            id="spec example",
        ),
        pytest.param(
            _steps(Action.REMOVE, 2, GIB),
            0,
            0,
            "2 to remove, 0 kept",
            id="removals; kept always shown",
        ),
        pytest.param(
            _steps(Action.DELETE, 1, 512) + _steps(Action.REMOVE, 1, 1) + _steps(Action.STOP, 2, 1),
            15,
            5,
            "1 to delete (512 B), 1 to remove, 2 to stop, 15 held back, 5 kept",
            id="everything",
        ),
    ],
)
def test_total_line(steps: tuple[Step, ...], held: int, kept: int, expected: str) -> None:
    plan = Plan(steps, _steps(Action.DELETE, held, 1), (), len(steps) + held + kept, kept)
    assert expected == format_totals(plan)


def test_json() -> None:
    expected = [
        {
            "hash": H1,
            "name": "Ubuntu 24.04 Desktop amd64",
            "rule": "old",
            "action": "delete",
            "values": {"ratio": 2.134, "seeding_time": 1220520.0},
        },
        {
            "hash": H2,
            "name": "A.Rather.Long.Release.Name.That.Goes.On.And.On.2160p",
            "rule": "ratio-met",
            "action": "stop",
            "values": {"ratio": 2.5},
        },
    ]
    assert expected == plan_to_json(PLAN)
    assert expected == json.loads(json.dumps(plan_to_json(PLAN)))


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (700 * MIB, "700.0 MiB"),
        (1024 * MIB - 1, "1.0 GiB"),
        (int(12.4 * GIB), "12.4 GiB"),
        (3 * 1024**4, "3.0 TiB"),
        (2048 * 1024**5, "2048.0 PiB"),
        (-1536, "-1.5 KiB"),
    ],
)
def test_human_bytes(n: int, expected: str) -> None:
    assert expected == human_bytes(n)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (42, "42s"),
        (60, "1m"),
        (65, "1m5s"),
        (3 * 3600 + 5 * 60 + 59, "3h5m"),
        (14 * 86400 + 3 * 3600 + 120, "14d3h"),
        (14 * 86400 + 120, "14d"),
        (400 * 86400, "400d"),
        (-90, "-1m30s"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert expected == human_duration(seconds)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ratio", 2.0, "2.00"),
        ("age", 86400.0, "1d"),
        ("size", 1536, "1.5 KiB"),
        ("up_rate", 2048, "2.0 KiB/s"),
        ("added", 1_700_000_000, "2023-11-14T22:13Z"),
        ("seeders", 3, "3"),
        ("complete", True, "true"),
        ("label", "tv", "tv"),
        ("label", "", '""'),
        ("message", 'a "b"', '"a \\"b\\""'),
        ("trackers", ("a.org", "b.net"), "a.org,b.net"),
        ("seeders", None, "?"),
    ],
)
def test_values_are_shown_by_kind(name: str, value: object, expected: str) -> None:
    assert expected == format_value(name, value)


# How each kind shows a sample value: 1.5 KiB, 1.5 KiB per second, 1 day and an hour,
# a unix time, a plain number.
BY_KIND = {
    Kind.SIZE: (1536, "1.5 KiB"),
    Kind.RATE: (1536, "1.5 KiB/s"),
    Kind.DURATION: (90000.0, "1d1h"),
    Kind.TIMESTAMP: (1_700_000_000, "2023-11-14T22:13Z"),
    Kind.NUMBER: (1536, "1536"),
    Kind.BOOL: (False, "false"),
    Kind.STRING: ("a b", '"a b"'),
    Kind.STRINGS: (("a", "b"), "a,b"),
}


@pytest.mark.parametrize(("name", "kind"), sorted(name_kinds().items()))
def test_every_name_is_shown_by_its_kind(name: str, kind: Kind) -> None:
    value, expected = BY_KIND[kind]
    assert expected == format_value(name, value)


def test_what_a_space_step_frees_is_a_size() -> None:
    assert "2.0 GiB" == format_value("frees", 2 * GIB)


def test_relabel_and_throttle_show_what_they_set() -> None:
    relabel = Step(H1, "a", Decision(Action.RELABEL, "mark", (), target="seeded"), (), 1)
    throttle = Step(H2, "b", Decision(Action.THROTTLE, "slow", (), target="slow"), (), 1)
    plan = Plan((relabel, throttle), (), (), total=3, kept=1)

    table = format_plan_table(plan).splitlines()

    assert table[1].startswith('relabel "seeded"') and table[2].startswith('throttle "slow"')
    assert "1 to relabel, 1 to throttle, 1 kept" == table[-1]
    assert ["seeded", "slow"] == [step["target"] for step in plan_to_json(plan)]
