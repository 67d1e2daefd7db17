"""The rule engine: first match decides, keep protects, done actions give no step,
derived facts from the clock and memory, and the safety valves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import oracle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtorrentd.conditions.parse import Condition, parse_condition
from rtorrentd.config.model import Action, Config, DaemonSettings, RtorrentSettings, Rule, Safety
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import Decision, Plan, Step, fetch_names, plan, recheck
from rtorrentd.errors import ConfigError
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import IDENTITY, name_kinds

NOW = 1_700_000_000.0
DAY = 86400.0
KEEP, STOP, REMOVE, DELETE = Action.KEEP, Action.STOP, Action.REMOVE, Action.DELETE


# --- hand-built conditions (the parser is tested on its own) ---------------------


def cond(text: str, names: set[str], test: Callable[[Mapping[str, Any]], bool]) -> Condition:
    return oracle.condition(text, names, test)


def at_least(name: str, bound: float) -> Condition:
    return cond(
        f"{name} >= {bound}", {name}, lambda f: (v := f.get(name)) is not None and v >= bound
    )


def equals(name: str, value: object) -> Condition:
    return cond(f"{name} == {value!r}", {name}, lambda f: f.get(name) == value)


def holds(name: str) -> Condition:
    return cond(name, {name}, lambda f: f.get(name) is True)


ANY = cond("true", set(), lambda f: True)


def config(*rules: tuple[str, Condition, Action], safety: Safety | None = None) -> Config:
    return Config(
        source="test.toml",
        rtorrent=RtorrentSettings(url="scgi:///run/rtorrent.sock"),
        daemon=DaemonSettings(),
        safety=safety or Safety(max_deletes_per_poll=1000, max_delete_fraction=1.0),
        rules=tuple(
            Rule(name, when, action, 10 * i) for i, (name, when, action) in enumerate(rules)
        ),
    )


def torrent(n: int, **fields: Any) -> Torrent:
    defaults: dict[str, Any] = {"complete": True, "started": True, "open": True, "size": 1024}
    return Torrent(hash=f"{n:040X}", name=f"t{n}", **(defaults | fields))


def step(t: Torrent, action: Action, rule: str, **values: object) -> Step:
    names = tuple(sorted(values))
    return Step(
        t.hash, t.name, Decision(action, rule, names), tuple(values[n] for n in names), t.size
    )


def run(torrents: Sequence[Torrent], cfg: Config, now: float = NOW) -> Plan:
    return plan(torrents, cfg, now, remember(Memory(), torrents, now))


# --- deciding --------------------------------------------------------------------


def test_the_first_matching_rule_decides() -> None:
    a, b = torrent(1, ratio=3.0), torrent(2, ratio=1.0)
    cfg = config(("ratio", at_least("ratio", 2), STOP), ("all", ANY, DELETE))
    expected = Plan(
        steps=(step(a, STOP, "ratio", ratio=3.0), step(b, DELETE, "all")),
        held=(),
        notes=(),
        total=2,
        kept=0,
    )
    assert expected == run([a, b], cfg)


def test_keep_protects_from_later_rules() -> None:
    pinned, other = torrent(1, label="keep"), torrent(2, label="tv")
    cfg = config(("pinned", equals("label", "keep"), KEEP), ("all", ANY, DELETE))
    expected = Plan((step(other, DELETE, "all"),), (), (), total=2, kept=1)
    assert expected == run([pinned, other], cfg)


def test_steps_come_in_rule_order_then_snapshot_order() -> None:
    t1, t2, t3, t4 = (torrent(n, ratio=r) for n, r in enumerate([0.5, 3.0, 0.1, 2.5]))
    cfg = config(("ratio", at_least("ratio", 2), REMOVE), ("rest", ANY, STOP))
    result = run([t1, t2, t3, t4], cfg)
    assert [t2.hash, t4.hash, t1.hash, t3.hash] == [s.hash for s in result.steps]


def test_no_rule_matching_leaves_the_torrent_kept() -> None:
    expected = Plan((), (), (), total=1, kept=1)
    assert expected == run([torrent(1, ratio=0.5)], config(("r", at_least("ratio", 2), STOP)))


@pytest.mark.parametrize(
    ("started", "open_", "stepped"),
    [
        pytest.param(False, False, False, id="stopped and closed: done"),
        pytest.param(True, False, True, id="started but closed"),
        pytest.param(False, True, True, id="stopped but open"),
        pytest.param(True, True, True, id="running"),
        pytest.param(None, None, True, id="unknown"),
    ],
)
def test_stop_is_only_planned_when_not_already_done(
    started: bool | None, open_: bool | None, stepped: bool
) -> None:
    t = torrent(1, started=started, open=open_)
    result = run([t], config(("all", ANY, STOP)))
    assert ((step(t, STOP, "all"),) if stepped else ()) == result.steps
    assert (0 if stepped else 1) == result.kept


@pytest.mark.parametrize("action", [REMOVE, DELETE])
def test_remove_and_delete_always_give_a_step(action: Action) -> None:
    t = torrent(1, started=False, open=False)
    assert (step(t, action, "all"),) == run([t], config(("all", ANY, action))).steps


def test_a_step_carries_the_values_its_rule_read_and_the_size() -> None:
    t = torrent(1, ratio=2.5, label="tv", size=7 * 1024**3)
    both = cond(
        'ratio >= 2 and label == "tv"',
        {"ratio", "label"},
        lambda f: f["ratio"] >= 2 and f["label"] == "tv",
    )
    cfg = config(("tv", both, DELETE), ("done", holds("complete"), STOP))
    expected = Step(
        t.hash, "t1", Decision(DELETE, "tv", ("label", "ratio")), ("tv", 2.5), 7 * 1024**3
    )
    assert (expected,) == run([t], cfg).steps
    assert (("label", "tv"), ("ratio", 2.5)) == expected.why


def test_the_steps_of_a_rule_share_its_decision_and_hold_only_their_values() -> None:
    # A first poll may decide 100,000 torrents: the action, rule, names and target
    # are one Decision for all the steps of a rule, and a step's values are the
    # snapshot's own objects, not copies; each keeps its type (1 is not True).
    ts = [torrent(n, ratio=2.0 + n, label="tv" if n % 2 else "films") for n in range(8)]
    rule = cond(
        "complete and ratio >= 2 and label != 1",
        {"complete", "ratio", "label"},
        lambda f: f["complete"] is True and f["ratio"] >= 2,
    )
    steps = run(ts, config(("old", rule, DELETE))).steps
    expected = [step(t, DELETE, "old", complete=True, label=t.label, ratio=t.ratio) for t in ts]
    assert expected == list(steps)
    assert ("complete", "label", "ratio") == steps[0].names
    assert all(s.decision is steps[0].decision for s in steps)
    assert (DELETE, "old", "") == (steps[0].action, steps[0].rule, steps[0].target)
    assert all(s.values[2] is t.ratio for s, t in zip(steps, ts, strict=True))
    assert [type(s.values[2]) for s in steps] == [float] * 8
    assert (("complete", True), ("label", "tv"), ("ratio", 3.0)) == steps[1].why


def test_recheck_judges_one_torrent_without_the_safety_valves() -> None:
    cfg = config(
        ("ratio", at_least("ratio", 2), DELETE),
        safety=Safety(max_deletes_per_poll=0, max_delete_fraction=0),
    )
    t = torrent(1, ratio=2.5)
    memory = remember(Memory(), [t], NOW)
    planned = step(t, DELETE, "ratio", ratio=2.5)
    assert recheck(t, planned, cfg, NOW, memory)
    assert not recheck(torrent(1, ratio=1.0), planned, cfg, NOW, memory)


# --- facts -----------------------------------------------------------------------


def facts_for(t: Torrent, *names: str, memory: Memory | None = None) -> dict[str, object]:
    memory = remember(Memory(), [t], NOW) if memory is None else memory
    [facts] = oracle.build_facts([t], frozenset(names), NOW, memory)
    return facts


def test_facts_hold_only_the_names_the_config_reads() -> None:
    received: list[Mapping[str, Any]] = []

    def record(facts: Mapping[str, Any]) -> bool:
        received.append(facts)
        return False

    spy = cond("spy", {"ratio", "age"}, record)
    cfg = config(("spy", spy, STOP), ("label", equals("label", "x"), STOP))
    run([torrent(1, ratio=1.5, label="tv", added=int(NOW - DAY))], cfg)
    assert [{"ratio": 1.5, "age": DAY, "label": "tv"}] == received


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"added": int(NOW - 3 * DAY)}, {"age": 3 * DAY}, id="age"),
        pytest.param({"added": None}, {"age": None}, id="age unknown"),
        pytest.param(
            {"complete": True, "finished": int(NOW - DAY)}, {"seeding_time": DAY}, id="seeding"
        ),
        pytest.param({"complete": False, "finished": None}, {"seeding_time": 0.0}, id="leeching"),
        pytest.param(
            {"complete": True, "finished": None}, {"seeding_time": None}, id="finish unknown"
        ),
        pytest.param({"ratio": None}, {"ratio": None}, id="field unknown"),
    ],
)
def test_derived_facts(fields: dict[str, Any], expected: dict[str, object]) -> None:
    assert expected == facts_for(torrent(1, **fields), *expected)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("ratio", {"ratio": None}),
        ("age", {"added": None}),
        ("seeding_time", {"finished": None}),
    ],
)
def test_unknown_values_make_conditions_false(name: str, fields: dict[str, Any]) -> None:
    cfg = config(("r", at_least(name, 0), DELETE))
    assert () == run([torrent(1, **fields)], cfg).steps


def test_idle_counts_from_the_last_upload_growth_across_polls() -> None:
    cfg = config(("idle", at_least("idle", 2 * DAY), STOP))
    memory, idles, steps = Memory(), list[object](), list[int]()
    for day, uploaded in enumerate([100, 100, 150, 150, 150, 150]):
        now, t = NOW + day * DAY, torrent(1, uploaded=uploaded)
        memory = remember(memory, [t], now)
        idles.append(oracle.build_facts([t], frozenset({"idle"}), now, memory)[0]["idle"])
        steps.append(len(plan([t], cfg, now, memory).steps))
    assert [0.0, DAY, 0.0, DAY, 2 * DAY, 3 * DAY] == idles
    assert [0, 0, 0, 0, 1, 1] == steps


def test_message_age_counts_from_when_the_message_appeared_or_changed() -> None:
    cfg = config(("unregistered", at_least("message_age", DAY), DELETE))
    memory, ages, steps = Memory(), list[object](), list[int]()
    for day, message in enumerate(["", "Unregistered", "Unregistered", "Down", "Down", ""]):
        now, t = NOW + day * DAY, torrent(1, message=message)
        memory = remember(memory, [t], now)
        [facts] = oracle.build_facts([t], frozenset({"message_age"}), now, memory)
        ages.append(facts["message_age"])
        steps.append(len(plan([t], cfg, now, memory).steps))
    assert [None, 0.0, DAY, 0.0, DAY, None] == ages
    assert [0, 0, 1, 0, 1, 0] == steps


def test_a_torrent_memory_has_not_seen_counts_as_first_seen_now() -> None:
    t = torrent(1, uploaded=5, message="Unregistered")
    assert {"idle": 0.0, "message_age": 0.0} == facts_for(t, "idle", "message_age", memory=Memory())


def test_an_unknown_name_is_a_config_error() -> None:
    cfg = config(("r", at_least("nonsense", 1), STOP))
    with pytest.raises(ConfigError, match="nonsense"):
        run([torrent(1)], cfg)
    with pytest.raises(ConfigError, match="nonsense"):
        fetch_names(cfg)


# --- fetch_names -----------------------------------------------------------------


def test_fetch_names_is_identity_plus_what_the_rules_read() -> None:
    cfg = config(
        ("a", at_least("ratio", 2), STOP),
        ("b", at_least("idle", DAY), STOP),
        ("c", at_least("seeding_time", DAY), STOP),
        ("d", at_least("message_age", DAY), STOP),
    )
    # `idle` is tracked between polls and kept in rtorrent (engine.times).
    tracked = {"complete", "started", "active", "uploaded", "saved_times"}
    expected = {*IDENTITY, "ratio", "finished", "message", *tracked}
    assert expected == fetch_names(cfg)


def test_fetch_names_without_rules_is_identity() -> None:
    assert frozenset(IDENTITY) == fetch_names(config())


# --- safety valves ---------------------------------------------------------------


def test_too_large_a_fraction_leaving_holds_every_removal_and_deletion() -> None:
    ts = [torrent(n, label=label) for n, label in enumerate(["a", "a", "b", "c", "d"])]
    cfg = config(
        ("a", equals("label", "a"), DELETE),
        ("b", equals("label", "b"), REMOVE),
        ("c", equals("label", "c"), STOP),
        safety=Safety(max_deletes_per_poll=20, max_delete_fraction=0.5),
    )
    expected = Plan(
        steps=(step(ts[3], STOP, "c", label="c"),),
        held=(
            step(ts[0], DELETE, "a", label="a"),
            step(ts[1], DELETE, "a", label="a"),
            step(ts[2], REMOVE, "b", label="b"),
        ),
        notes=(
            "max_delete_fraction = 0.5: 3 of 5 torrents would leave the client,"
            " all 3 held back; check the rules and the snapshot",
        ),
        total=5,
        kept=1,
    )
    assert expected == run(ts, cfg)


def test_a_fraction_exactly_at_the_limit_passes() -> None:
    ts = [torrent(n, label=label) for n, label in enumerate(["a", "a", "b", "b"])]
    cfg = config(
        ("a", equals("label", "a"), DELETE),
        safety=Safety(max_deletes_per_poll=20, max_delete_fraction=0.5),
    )
    result = run(ts, cfg)
    assert (2, (), ()) == (len(result.steps), result.held, result.notes)


def test_deletions_beyond_the_per_poll_limit_wait_in_rule_then_snapshot_order() -> None:
    ts = [torrent(n, label=label) for n, label in enumerate(["b", "a", "b", "a", "c"])]
    cfg = config(
        ("a", equals("label", "a"), DELETE),
        ("b", equals("label", "b"), DELETE),
        ("c", equals("label", "c"), REMOVE),
        safety=Safety(max_deletes_per_poll=3, max_delete_fraction=1.0),
    )
    a1, a3 = step(ts[1], DELETE, "a", label="a"), step(ts[3], DELETE, "a", label="a")
    b0, b2 = step(ts[0], DELETE, "b", label="b"), step(ts[2], DELETE, "b", label="b")
    expected = Plan(
        steps=(a1, a3, b0, step(ts[4], REMOVE, "c", label="c")),
        held=(b2,),
        notes=("max_deletes_per_poll = 3: 4 deletions, 1 wait for the next poll",),
        total=5,
        kept=0,
    )
    assert expected == run(ts, cfg)


def test_the_valves_hold_back_by_position_not_by_equality() -> None:
    # A bad snapshot may list one torrent twice: two equal steps, the first goes.
    t, u = torrent(1), torrent(2)
    cfg = config(("all", ANY, DELETE), safety=Safety(max_deletes_per_poll=1, max_delete_fraction=1))
    result = run([t, t, u], cfg)
    first, again, other = (step(x, DELETE, "all") for x in (t, t, u))
    assert ((first,), (again, other), 0) == (result.steps, result.held, result.kept)


def test_stops_are_never_held() -> None:
    ts = [torrent(n) for n in range(3)]
    cfg = config(("all", ANY, STOP), safety=Safety(max_deletes_per_poll=0, max_delete_fraction=0))
    result = run(ts, cfg)
    assert (3, (), ()) == (len(result.steps), result.held, result.notes)


def test_an_empty_snapshot_plans_nothing() -> None:
    assert Plan((), (), (), total=0, kept=0) == run([], config(("all", ANY, DELETE)))


def test_plan_is_a_function_of_its_arguments() -> None:
    ts = [torrent(n, ratio=float(n), added=int(NOW - n * DAY)) for n in range(6)]
    cfg = config(("r", at_least("ratio", 3), DELETE), ("a", at_least("age", 1), STOP))
    memory = remember(Memory(), ts, NOW)
    assert plan(ts, cfg, NOW, memory) == plan(list(ts), cfg, NOW, memory)
    assert dataclasses.is_dataclass(Plan) and Plan.__dataclass_params__.frozen  # type: ignore[attr-defined]


@given(
    st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.booleans()), max_size=30),
    st.integers(0, 5),
    st.floats(0, 1),
)
def test_every_torrent_is_counted_once(
    shapes: list[tuple[int, bool, bool]], per_poll: int, fraction: float
) -> None:
    ts = [torrent(n, label=str(k), started=s, open=o) for n, (k, s, o) in enumerate(shapes)]
    cfg = config(
        ("0", equals("label", "0"), KEEP),
        ("1", equals("label", "1"), STOP),
        ("2", equals("label", "2"), REMOVE),
        ("all", ANY, DELETE),
        safety=Safety(max_deletes_per_poll=per_poll, max_delete_fraction=fraction),
    )
    result = run(ts, cfg)
    hashes = [s.hash for s in result.steps + result.held]
    assert len(hashes) == len(set(hashes))
    assert len(ts) == result.total == len(hashes) + result.kept
    assert sum(s.action is DELETE for s in result.steps) <= per_poll
    assert all(s.action is not STOP for s in result.held)


# --- the whole snapshot at once agrees with first match torrent by torrent ---------

PARSED = [
    ("ratio >= 2", STOP),
    ('label == "keep"', KEEP),
    ("complete and age > 2d", DELETE),
    ('not complete or label ~ "^t"', REMOVE),
    ('ratio < 1 and (age > 1d or label in ["a", "tv"])', STOP),
    ("true", DELETE),
]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([None, 0.0, 0.5, 2.0, 3.0]),
            st.sampled_from([None, "keep", "tv", "a", ""]),
            st.sampled_from([None, True, False]),
            st.sampled_from([None, 0, 1, 3]),
            st.booleans(),
        ),
        max_size=40,
    ),
    st.lists(st.integers(0, len(PARSED) - 1), min_size=1, max_size=5),
)
def test_plan_is_first_match_of_each_rules_test(
    shapes: list[tuple[float | None, str | None, bool | None, int | None, bool]],
    order: list[int],
) -> None:
    ts = [
        torrent(n, ratio=r, label=lb, complete=c, started=s, open=s, added=None if d is None
                else int(NOW - d * DAY))
        for n, (r, lb, c, d, s) in enumerate(shapes)
    ]  # fmt: skip
    kinds = name_kinds()
    cfg = config(*((str(i), parse_condition(PARSED[i][0], kinds), PARSED[i][1]) for i in order))
    memory = remember(Memory(), ts, NOW)
    facts = oracle.build_facts(ts, cfg.names(), NOW, memory)
    expected = []
    for t, f in zip(ts, facts, strict=True):
        rule = next((r for r in cfg.rules if oracle.holds(r.when, f)), None)
        if (
            rule is not None
            and rule.action is not KEEP
            and not (rule.action is STOP and t.started is False)
        ):
            read = tuple((n, f[n]) for n in sorted(rule.when.names))
            expected.append((cfg.rules.index(rule), t.hash, rule.name, read))
    expected.sort(key=lambda e: e[0])  # rule order, then snapshot order (sort is stable)
    result = plan(ts, cfg, NOW, memory)
    assert [e[1:] for e in expected] == [(s.hash, s.rule, s.why) for s in result.steps]


def test_only_the_remembering_derived_names_read_the_memory() -> None:
    # `plan` from an empty memory skips remembering the snapshot when its rules
    # read none of REMEMBERING (service.planning.plan_now): every other column
    # must come out the same either way, with uploads, messages and records about.
    from rtorrentd.engine.derived import DERIVED_COLUMNS, REMEMBERING, Inputs
    from rtorrentd.engine.times import SEEDING, Times, record

    now = 1_700_000_000.0
    saved = record(Times(3600.0, 60.0, now - 7200, now - 86400, now - 300, SEEDING), 5000, ())
    torrents = [
        Torrent(
            hash=f"{i:040X}",
            name=f"t{i}",
            complete=bool(i % 2),
            started=bool(i % 3),
            active=bool(i % 3),
            uploaded=1000 * i,
            message="Unregistered torrent" if i % 4 == 0 else "",
            trackers=("http://tracker.example/announce",),
            added=int(now) - 100 * i,
            finished=int(now) - 50 * i if i % 2 else None,
            scraped=int(now) - 10 * i,
            saved_times=saved if i % 5 == 0 else None,
        )
        for i in range(1, 21)
    ]
    remembered = remember(Memory.empty(), torrents, now, cap=600.0)
    assert remembered.seen  # something to differ by
    for name, column in DERIVED_COLUMNS.items():
        if name in REMEMBERING:
            continue
        empty = column(torrents, Inputs(now, Memory.empty()))
        assert list(empty) == list(column(torrents, Inputs(now, remembered))), name
