"""Time `plan` and `remember` over 50,000 torrents and 10 realistic rules.

Target: `plan` (columns + 10 rules + safety valves) <= 100 ms. Run:
`.venv/bin/python bench/engine.py [--closures]`. The conditions come from
`rtorrentd.conditions.parse.parse_condition`, which compiles each to a column-wise `select`
(the engine's path); with `--closures` they are hand-built row-wise tests
instead, run through one facts dict per torrent per rule (`_by_rows`): that
measures what a row-wise evaluator costs, not the engine. The
last line times empty Python calls, the floor under any row-wise condition, to
compare machines.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rtorrentd.conditions.parse import Columns, Condition, Select, parse_condition
from rtorrentd.config.model import Action, Config, DaemonSettings, RtorrentSettings, Rule, Safety
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import Plan, build_columns, plan
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import name_kinds

COUNT = 50_000
NOW = 1_750_000_000.0
DAY = 86_400
GIB = 1024**3
TARGET_MS = 100.0

# Any: the parser type-checks conditions, so a compiled test compares without checks.
Facts = Mapping[str, Any]
Test = Callable[[Facts], bool]


def _ge(name: str, bound: float) -> Test:
    return lambda f: (v := f.get(name)) is not None and v >= bound


def _gt(name: str, bound: float) -> Test:
    return lambda f: (v := f.get(name)) is not None and v > bound


def _lt(name: str, bound: float) -> Test:
    return lambda f: (v := f.get(name)) is not None and v < bound


def _eq(name: str, value: object) -> Test:
    return lambda f: (v := f.get(name)) is not None and v == value


def _is(name: str, value: bool = True) -> Test:
    return lambda f: f.get(name) is value


def _matches(name: str, pattern: str) -> Test:
    search = re.compile(pattern, re.IGNORECASE).search
    return lambda f: (v := f.get(name)) is not None and search(v) is not None


def _any_matches(name: str, pattern: str) -> Test:
    search = re.compile(pattern, re.IGNORECASE).search
    return lambda f: (v := f.get(name)) is not None and any(map(search, v))


def _and2(left: Test, right: Test) -> Test:
    return lambda f: left(f) and right(f)


def _all(*tests: Test) -> Test:
    """Nested `and` closures, the shape a compiling parser produces."""
    return functools.reduce(_and2, tests)


# (rule name, action, condition text, hand-built test, names read)
RULES = (
    ("pinned", Action.KEEP, 'label == "keep"', _eq("label", "keep"), {"label"}),
    (
        "unregistered",
        Action.DELETE,
        'message ~ "unregistered" and message_age >= 1d',
        _all(_matches("message", "unregistered"), _ge("message_age", DAY)),
        {"message", "message_age"},
    ),
    (
        "ratio-met",
        Action.STOP,
        "complete and ratio >= 2 and seeding_time >= 7d",
        _all(_is("complete"), _ge("ratio", 2), _ge("seeding_time", 7 * DAY)),
        {"complete", "ratio", "seeding_time"},
    ),
    (
        "old-tv",
        Action.REMOVE,
        'label ~ "^tv" and seeding_time > 300d',
        _all(_matches("label", "^tv"), _gt("seeding_time", 300 * DAY)),
        {"label", "seeding_time"},
    ),
    (
        "dead-public",
        Action.DELETE,
        "not private and age > 60d and leechers == 0",
        _all(_is("private", False), _gt("age", 60 * DAY), _eq("leechers", 0)),
        {"private", "age", "leechers"},
    ),
    (
        "tracker-quota",
        Action.STOP,
        'trackers ~ "example\\.org$" and ratio >= 3',
        _all(_any_matches("trackers", r"example\.org$"), _ge("ratio", 3)),
        {"trackers", "ratio"},
    ),
    (
        "idle",
        Action.STOP,
        "complete and idle > 14d",
        _all(_is("complete"), _gt("idle", 14 * DAY)),
        {"complete", "idle"},
    ),
    (
        "stalled",
        Action.DELETE,
        "not complete and age > 90d and done == 0",
        _all(_is("complete", False), _gt("age", 90 * DAY), _eq("done", 0)),
        {"complete", "age", "done"},
    ),
    (
        "huge-unpopular",
        Action.REMOVE,
        "size > 50GiB and ratio < 0.1 and age > 30d",
        _all(_gt("size", 50 * GIB), _lt("ratio", 0.1), _gt("age", 30 * DAY)),
        {"size", "ratio", "age"},
    ),
    (
        "seedless",
        Action.STOP,
        "seeders == 0 and seeding_time > 365d",
        _all(_eq("seeders", 0), _gt("seeding_time", 365 * DAY)),
        {"seeders", "seeding_time"},
    ),
)


def _by_rows(test: Test) -> Select:
    """A row-wise test as a `Select`: one facts dict per candidate."""

    def select(columns: Columns, idx: Sequence[int]) -> list[int]:
        named = tuple(columns.items())
        return [i for i in idx if test({name: column[i] for name, column in named})]

    return select


def hand_built_rules() -> tuple[Rule, ...]:
    return tuple(
        Rule(name, Condition(text, frozenset(names), _by_rows(test)), action, i + 1)
        for i, (name, action, text, test, names) in enumerate(RULES)
    )


def build_rules(closures: bool) -> tuple[tuple[Rule, ...], str]:
    """Parsed conditions if the parser is there (and not `closures`), else hand-built."""
    if closures:
        return hand_built_rules(), "hand-built closures (--closures)"
    try:
        kinds = name_kinds()
        parsed = tuple(
            Rule(name, parse_condition(text, kinds), action, i + 1)
            for i, (name, action, text, _, _) in enumerate(RULES)
        )
    except NotImplementedError:
        return hand_built_rules(), "hand-built closures (parser not written yet)"
    return parsed, "parsed by rtorrentd.conditions.parse.parse_condition"


def make_torrent(rng: random.Random, i: int, max_age: int = 400 * DAY) -> Torrent:
    """One torrent with plausible values; most match no rule (the costly case)."""
    complete = rng.random() < 0.9
    added = int(NOW) - rng.randrange(max_age)
    finished = added + rng.randrange(3 * DAY) if complete else None
    size = int(rng.lognormvariate(21, 2))
    ratio = round(rng.expovariate(1.2), 3)
    tracker = rng.choice(("tracker.example.org", "t.private.net", "open.tracker.io"))
    return Torrent(
        hash=f"{rng.getrandbits(160):040X}",
        name=f"Some.Release.{i}.1080p",
        label=rng.choice(("", "tv", "tv-archive", "movies", "music", "keep", "linux")),
        complete=complete,
        started=rng.random() < 0.8,
        open=rng.random() < 0.8,
        private=rng.random() < 0.6,
        ratio=ratio,
        size=size,
        done=size if complete else rng.randrange(size + 1) // 2,
        uploaded=int(size * ratio),
        added=added,
        finished=finished,
        message=rng.choice(('Tracker: [Failure reason "Unregistered torrent"]', ""))
        if rng.random() < 0.05
        else "",
        seeders=rng.choice((None, 0, 1, 5, 40)),
        leechers=rng.choice((None, 0, 1, 2, 3, 5, 10, 40)),
        trackers=(tracker,),
    )


def _earlier(rng: random.Random, torrent: Torrent) -> Torrent:
    """The torrent 15 days ago: nine in ten have uploaded something since."""
    uploaded = torrent.uploaded or 0
    if rng.random() < 0.9 and uploaded > 0:
        return dataclasses.replace(torrent, uploaded=uploaded - rng.randrange(uploaded) - 1)
    return torrent


def best_ms(run: Callable[[], object], repeat: int = 5) -> float:
    """The fastest of `repeat` runs, in ms: the least disturbed by other processes."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def settle(rng: random.Random, torrents: list[Torrent], done: Plan) -> list[Torrent]:
    """The library once `done` is carried out: stopped ones closed, those that left
    replaced by new downloads. Most polls of a running daemon look like this."""
    actions = {step.hash: step.action for step in done.steps}
    return [_settle(rng, i, t, actions.get(t.hash)) for i, t in enumerate(torrents)]


def _settle(rng: random.Random, i: int, torrent: Torrent, action: Action | None) -> Torrent:
    if action is None:
        return torrent
    if action is Action.STOP:
        return dataclasses.replace(torrent, started=False, open=False)
    return make_torrent(rng, COUNT + i, max_age=DAY)


def report(label: str, torrents: list[Torrent], config: Config, memory: Memory) -> None:
    result = plan(torrents, config, NOW, memory)
    plan_ms = best_ms(lambda: plan(torrents, config, NOW, memory))
    columns_ms = best_ms(lambda: build_columns(torrents, config.names(), NOW, memory))
    verdict = "ok" if plan_ms <= TARGET_MS else "OVER TARGET"
    print(f"{label}: {len(result.steps)} steps, {result.kept} kept")
    print(f"  plan:     {plan_ms:6.1f} ms (target <= {TARGET_MS:.0f} ms: {verdict})")
    print(f"  of which columns: {columns_ms:6.1f} ms ({len(config.names())} names)")


def main() -> None:
    rng = random.Random(20_240_601)
    torrents = [make_torrent(rng, i) for i in range(COUNT)]
    rules, source = build_rules("--closures" in sys.argv)
    config = Config(
        source="bench",
        rtorrent=RtorrentSettings(url="scgi:///tmp/rpc.socket"),
        daemon=DaemonSettings(),
        safety=Safety(max_deletes_per_poll=COUNT, max_delete_fraction=1.0),
        rules=rules,
    )
    # Memory as in a running daemon: seen 15 days ago, then now; most have uploaded since.
    earlier = [_earlier(rng, t) for t in torrents]
    memory = remember(remember(Memory(), earlier, NOW - 15 * DAY), torrents, NOW)
    print(f"{COUNT} torrents, {len(rules)} rules, conditions {source}; best of 5")
    report("first poll over the library", torrents, config, memory)
    steady = settle(rng, torrents, plan(torrents, config, NOW, memory))
    steady_memory = remember(memory, steady, NOW)
    report("steady state (first plan carried out)", steady, config, steady_memory)
    remember_ms = best_ms(lambda: remember(steady_memory, steady, NOW + 300))
    print(f"remember: {remember_ms:6.1f} ms")
    print(
        f"this machine: {floor_ms():.1f} ms for {len(rules) * COUNT:,} calls"
        " of a Python test that does nothing"
    )


def floor_ms() -> float:
    """The least 10 rules over 50,000 torrents can cost here: one call per test
    that does nothing. Compares numbers taken on different machines."""
    facts = [{"ratio": 1.0}] * COUNT

    def nothing(facts: Facts) -> bool:
        return False

    return best_ms(lambda: [list(map(nothing, facts)) for _ in RULES])


if __name__ == "__main__":
    main()
