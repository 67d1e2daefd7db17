"""No input gives a traceback: only `ConfigError` ever leaves the configuration
loader or the condition parser, and whatever they accept evaluates without raising.

Random and mutated TOML and conditions, full of values at and past every range
(numbers of thousands of digits, sizes past a float, division by zero, deep
nesting); what parses is evaluated against snapshots through the engine's own
column-wise path (`build_columns`, `Condition.select`, `plan`).
"""

from __future__ import annotations

import dataclasses
import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rtorrentd.conditions.parse import Condition, parse_condition
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import build_columns, plan
from rtorrentd.errors import ConfigError, ExprError
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import Kind, name_kinds

NOW = 1_795_400_000.0
KINDS = name_kinds()
TEXT_KINDS = {Kind.STRING, Kind.STRINGS}
NUMERIC = sorted(n for n, k in KINDS.items() if k not in TEXT_KINDS and k is not Kind.BOOL)
TEXTS = sorted(n for n, k in KINDS.items() if k in TEXT_KINDS)
FLAGS = sorted(n for n, k in KINDS.items() if k is Kind.BOOL)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- snapshots ---------------------------------------------------------------------

I8 = st.integers(-(2**63), 2**63 - 1)  # what rtorrent's i8 holds
SMALL = st.integers(-1, 10**12)


def maybe(values: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | values


TORRENTS = st.builds(
    Torrent,
    hash=st.sampled_from(["A" * 40, "B" * 40, "C" * 40]),
    name=st.text(max_size=8),
    label=maybe(st.sampled_from(["", "tv", "keep"])),
    directory=maybe(st.just("/srv/dl")),
    path=maybe(st.just("/srv/dl/x")),
    multi_file=maybe(st.booleans()),
    complete=maybe(st.booleans()),
    started=maybe(st.booleans()),
    active=maybe(st.booleans()),
    open=maybe(st.booleans()),
    private=maybe(st.booleans()),
    ratio=maybe(st.floats(allow_nan=False, allow_infinity=False) | st.just(0.0)),
    size=maybe(I8 | SMALL),
    done=maybe(I8 | SMALL),
    uploaded=maybe(I8 | SMALL),
    downloaded=maybe(I8 | SMALL),
    up_rate=maybe(SMALL),
    down_rate=maybe(SMALL),
    added=maybe(I8 | st.integers(0, int(NOW))),
    finished=maybe(I8 | st.integers(0, int(NOW))),
    message=maybe(st.sampled_from(["", "Tracker: [Couldn't connect to server]"])),
    peers=maybe(SMALL),
    seeders=maybe(SMALL),
    leechers=maybe(SMALL),
    scraped=maybe(I8 | st.integers(0, int(NOW))),
    trackers=maybe(st.lists(st.sampled_from(["t.example.org", ""]), max_size=2).map(tuple)),
)
# The torrent of the recorded reply (tests/data/multicall2_reply.scgi), one with
# every field known, and one with nothing known beyond its identity.
RECORDED = Torrent(
    hash="BCE76E61E76BB2BB3B780D941247EEF71DC6ACD2",
    name="one.bin",
    label="",
    path="/tmp/rt1/dl/one.bin",
    complete=False,
    started=False,
    open=False,
    size=100000,
    message="Tracker: [Couldn't connect to server]",
    added=1795313242,
)
KNOWN = Torrent(
    hash="D" * 40,
    name="all.bin",
    label="tv",
    directory="/srv/dl",
    path="/srv/dl/all.bin",
    multi_file=False,
    complete=True,
    started=True,
    active=True,
    open=True,
    private=True,
    ratio=0.0,
    size=0,
    done=0,
    uploaded=0,
    downloaded=0,
    up_rate=0,
    down_rate=0,
    added=int(NOW) - 86400,
    finished=int(NOW) - 3600,
    message="",
    peers=0,
    seeders=0,
    leechers=0,
    scraped=int(NOW) - 60,
    trackers=("t.example.org",),
)
UNKNOWN = Torrent(hash="E" * 40, name="")
SNAPSHOTS = st.lists(TORRENTS, max_size=4).map(lambda drawn: [RECORDED, KNOWN, UNKNOWN, *drawn])


def evaluate(condition: Condition, torrents: list[Torrent]) -> list[int]:
    """`condition` over `torrents` as the engine evaluates it: columns, then select."""
    memory = remember(Memory(), torrents, NOW)
    columns = build_columns(torrents, condition.names, NOW, memory)
    everyone = list(range(len(torrents)))
    selected = condition.select(columns, everyone)
    assert set(selected) <= set(everyone)
    return selected


# --- conditions ------------------------------------------------------------------

NUMBERS = [
    "0", "1", "2.5", "0.0", "30s", "1d12h", "1.5GiB", "500MB", "1000000000000000000",
    "1000000000000000001", "9" * 30, "9" * 309, "9" * 5000, "9" * 400 + "d",
    "9" * 400 + ".5GiB", "1e400", "1000000TiB", "0" * 50 + "1",
    "(" + " * ".join(["1000000000000000000"] * 18) + ")",  # 10^324: past a float
    "100KiB/s", "9" * 400 + "KiB/s", "1000000000000000000B/s",
]  # fmt: skip
STRINGS = ['"a"', '"tv"', '"(a+)+"', '"["', "'x'", '"\\\\d{4}"', '"a{99999999999}"', '""']
ARITH = ["+", "-", "*", "/"]
COMPARE = ["==", "!=", "<", "<=", ">", ">="]


def values() -> st.SearchStrategy[str]:
    leaves = st.sampled_from(NUMERIC) | st.sampled_from(NUMBERS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return (
            st.builds(lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from(ARITH), inner)
            | st.builds(
                lambda f, a, b: f"{f}({a}, {b})", st.sampled_from(["min", "max"]), inner, inner
            )
            | inner.map(lambda a: f"-{a}")
        )

    return st.recursive(leaves, extend, max_leaves=8)


def conditions() -> st.SearchStrategy[str]:
    comparison = st.builds(
        lambda a, op, b: f"{a} {op} {b}", values(), st.sampled_from(COMPARE), values()
    )
    text_test = st.builds(
        lambda name, op, s: f"{name} {op} {s}",
        st.sampled_from(TEXTS),
        st.sampled_from(["==", "!=", "~", "!~"]),
        st.sampled_from(STRINGS),
    )
    member = st.builds(
        lambda name, neg, items: f"{name} {'not in' if neg else 'in'} [{', '.join(items)}]",
        st.sampled_from(TEXTS + NUMERIC),
        st.booleans(),
        st.lists(st.sampled_from(STRINGS + NUMBERS[:6]), max_size=3),
    )
    leaves = comparison | text_test | member | st.sampled_from([*FLAGS, "true", "false"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        words = st.sampled_from(["and", "or"])
        return st.builds(lambda a, w, b: f"({a} {w} {b})", inner, words, inner) | inner.map(
            lambda a: f"not {a}"
        )

    return st.recursive(leaves, extend, max_leaves=6)


TOKENS = [
    *NUMERIC[:6], *TEXTS[:3], *FLAGS[:3], *NUMBERS, *STRINGS, *ARITH, *COMPARE, "(", ")",
    "[", "]", ",", "~", "!~", "and", "or", "not", "in", "min", "max", "true", "false", "=",
    "&&", "nosuch", "AND", "'open", '"\\', "\x00", "é", "(" * 40, "not " * 40, "-" * 40,
]  # fmt: skip


def mutated(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`texts` with a random cut, insertion or repetition."""

    def mutate(text: str, data: st.DataObject) -> str:
        at = data.draw(st.integers(0, len(text)))
        to = data.draw(st.integers(at, len(text)))
        piece = data.draw(st.sampled_from(TOKENS) | st.text(max_size=4))
        how = data.draw(st.sampled_from(["cut", "insert", "replace", "repeat"]))
        if how == "cut":
            return text[:at] + text[to:]
        if how == "insert":
            return text[:at] + piece + text[at:]
        if how == "replace":
            return text[:at] + piece + text[to:]
        return text[:at] + text[at:to] * data.draw(st.integers(2, 200)) + text[to:]

    return st.builds(mutate, texts, st.data())


ANY_CONDITION = (
    conditions()
    | mutated(conditions())
    | st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join)
    | st.text(max_size=30)
)


@FUZZ
@given(ANY_CONDITION, SNAPSHOTS)
def test_a_condition_parses_or_fails_with_an_expr_error_and_evaluates(
    text: str, torrents: list[Torrent]
) -> None:
    try:
        condition = parse_condition(text, KINDS)
    except ExprError as exc:
        assert 0 <= exc.column <= len(text)
        event("refused")
        return
    event("evaluated")
    evaluate(condition, torrents)


@settings(max_examples=100, deadline=None)
@given(values(), SNAPSHOTS)
def test_arithmetic_that_parses_never_raises_when_evaluated(
    value: str, torrents: list[Torrent]
) -> None:
    # Every value compared with itself and with zero (the most of them parse), and
    # next to a constant past a float and a divisor that may be zero.
    past_a_float = " * ".join(["1000000000000000000"] * 18)
    texts = (
        f"{value} > 0",
        f"{value} == {value}",
        f"not ({value} <= 0)",
        f"{value} + {past_a_float} > 0",
        f"{past_a_float} / ({value}) > 0",
        f"({value}) / ({value} - {value}) >= 0",
    )
    for text in texts:
        try:
            condition = parse_condition(text, KINDS)
        except ExprError:
            event("refused")
            continue
        event("evaluated")
        evaluate(condition, torrents)


# --- configuration ---------------------------------------------------------------

VALUES = [
    '"scgi:///r.sock"', '"scgi://h:1"', '"http://h/RPC2"', '"scgi://h:99999999999"',
    '"30s"', '"1d12h"', '"1.5GiB"', '"9' + "9" * 400 + 's"', '"' + "9" * 400 + '.5GiB"',
    '"1e400GiB"', "9" * 5000, "-" + "9" * 5000, "9" * 25, "1e308", "-1e308", "inf", "nan",
    "0", "1", "-1", "0.5", "true", '""', '"x"', '"/srv/dl"', '["/srv/dl"]', '["/"]',
    "[" * 200 + "]" * 200, "{a = 1}", '"delete"', '"keep"', '"stop"', '"seeders desc, ratio"',
    "1979-05-27T07:32:00Z", '"\\u0000"',
]  # fmt: skip
KEYS = {
    "rtorrent": ["url", "timeout", "connect_timeout", "max_reply", "username",
                 "password_file", "tls_verify", "ca_file", "bogus"],
    "daemon": ["interval", "dry_run", "window"],
    "safety": ["allowed_roots", "max_deletes_per_poll", "max_delete_fraction"],
    "rule": ["name", "when", "action"],
    "space": ["path", "min_free", "target_free", "candidates", "order", "action"],
}  # fmt: skip
CONDITION_KEYS = ("when", "candidates")


def table(name: str, array: bool) -> st.SearchStrategy[str]:
    keys = KEYS[name]
    value = st.sampled_from(VALUES)
    condition = conditions().map(json.dumps)
    lines = st.lists(
        st.sampled_from(keys).flatmap(
            lambda key: (condition if key in CONDITION_KEYS else value).map(
                lambda v: f"{key} = {v}"
            )
        ),
        max_size=len(keys) + 1,
    )
    header = f"[[{name}]]" if array else f"[{name}]"
    return lines.map(lambda body: "\n".join([header, *body]))


def documents() -> st.SearchStrategy[str]:
    url = '[rtorrent]\nurl = "scgi:///r.sock"\n'
    roots = '[safety]\nallowed_roots = ["/srv/dl"]\n'
    tables = st.lists(
        st.sampled_from(list(KEYS)).flatmap(lambda n: table(n, n in ("rule", "space"))),
        max_size=5,
    )
    return st.builds(
        lambda a, b, rest: "\n".join([a, b, *rest]) + "\n",
        st.sampled_from([url, ""]),
        st.sampled_from([roots, ""]),
        tables,
    )


VALID = """\
[rtorrent]
url = "scgi:///r.sock"
timeout = "30s"
max_reply = "64MiB"
[daemon]
interval = "5m"
window = "1d12h"
[safety]
allowed_roots = ["/srv/dl"]
max_deletes_per_poll = 3
max_delete_fraction = 0.5
[[rule]]
name = "seeded"
when = 'complete and ratio >= 2.0 and uploaded / size > 0.5'
action = "delete"
[[space]]
path = "/srv/dl"
min_free = "50GiB"
candidates = "complete and seeding_time >= 2d"
order = "seeders desc, ratio"
action = "delete"
"""
WHEN = "'complete and ratio >= 2.0 and uploaded / size > 0.5'"
ANY_DOCUMENT = (
    conditions().map(lambda when: VALID.replace(WHEN, json.dumps(when)))
    | documents()
    | mutated(documents())
    | mutated(st.just(VALID))
    | st.text(max_size=60)
)


def acted_on(config: Config, torrents: list[Torrent]) -> None:
    """`plan` over `torrents`, safety valves open so every step is computed."""
    memory = remember(Memory(), torrents, NOW, config.daemon.window)
    open_valves = dataclasses.replace(
        config.safety, max_deletes_per_poll=10, max_delete_fraction=1.0
    )
    result = plan(torrents, dataclasses.replace(config, safety=open_valves), NOW, memory)
    assert len(result.steps) + len(result.held) + result.kept == len(torrents)


@FUZZ
@given(ANY_DOCUMENT, SNAPSHOTS)
def test_a_configuration_parses_or_fails_with_a_config_error_and_plans(
    text: str, torrents: list[Torrent]
) -> None:
    try:
        config = parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml")
        event("refused")
        return
    event("planned")
    acted_on(config, torrents)
