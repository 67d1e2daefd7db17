"""The condition language: operators, units, precedence, unknowns, errors, round trips."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import condition as hand_built
from oracle import holds as holds_for

from rtorrentd.conditions.parse import Condition, parse_condition, parse_duration, parse_size
from rtorrentd.errors import ExprError
from rtorrentd.vocabulary import name_kinds

NAMES = name_kinds()
GIB = 1024**3


def holds(text: str, facts: Mapping[str, object]) -> bool:
    return holds_for(parse_condition(text, NAMES), facts)


def as_columns(facts: Sequence[Mapping[str, object]]) -> dict[str, list[object]]:
    """Rows of facts as columns; a name no row has stays out (unknown throughout)."""
    names = {name for row in facts for name in row}
    return {name: [row.get(name) for row in facts] for name in names}


def selects(
    text: str, facts: Sequence[Mapping[str, object]], candidates: Sequence[int]
) -> list[int]:
    return parse_condition(text, NAMES).select(as_columns(facts), candidates)


def fails(text: str) -> tuple[int, str]:
    with pytest.raises(ExprError) as caught:
        parse_condition(text, NAMES)
    return caught.value.column, caught.value.message


# --- operators -------------------------------------------------------------------

OPERATORS = [
    ("ratio == 2", {"ratio": 2.0}, True),
    ("ratio == 2", {"ratio": 2.5}, False),
    ("ratio != 2", {"ratio": 2.5}, True),
    ("ratio != 2", {"ratio": 2}, False),
    ("ratio < 2", {"ratio": 1.9}, True),
    ("ratio < 2", {"ratio": 2}, False),
    ("ratio <= 2", {"ratio": 2}, True),
    ("ratio <= 2", {"ratio": 2.1}, False),
    ("ratio > 2", {"ratio": 2.1}, True),
    ("ratio > 2", {"ratio": 2}, False),
    ("ratio >= 2", {"ratio": 2}, True),
    ("ratio >= 2", {"ratio": 1.9}, False),
    ("2 <= ratio", {"ratio": 2}, True),
    ("2 < ratio", {"ratio": 2}, False),
    ("peers == seeders", {"peers": 3, "seeders": 3}, True),
    ("peers < seeders", {"peers": 3, "seeders": 3}, False),
    ("complete", {"complete": True}, True),
    ("complete", {"complete": False}, False),
    ("complete == true", {"complete": True}, True),
    ("complete != true", {"complete": False}, True),
    ("complete == false", {"complete": False}, True),
    ("not complete", {"complete": True}, False),
    ("not complete", {"complete": False}, True),
    ("not not complete", {"complete": True}, True),
    ("complete and private", {"complete": True, "private": True}, True),
    ("complete and private", {"complete": True, "private": False}, False),
    ("complete or private", {"complete": False, "private": True}, True),
    ("complete or private", {"complete": False, "private": False}, False),
    ("not complete and private", {"complete": False, "private": True}, True),
    ("not complete or private", {"complete": True, "private": False}, False),
    ("true", {}, True),
    ("false", {}, False),
    ("not false and true", {}, True),
    ('label == "tv"', {"label": "tv"}, True),
    ('label == "tv"', {"label": "TV"}, False),
    ('label != "tv"', {"label": "movies"}, True),
    ("label == 'tv'", {"label": "tv"}, True),
    ('"tv" == label', {"label": "tv"}, True),
    ('name ~ "x26[45]"', {"name": "Film.2020.x264"}, True),
    ('name ~ "X264"', {"name": "Film.2020.x264"}, True),
    ('name ~ "^x264"', {"name": "Film.2020.x264"}, False),
    ('name !~ "x264"', {"name": "Film.2020.x265"}, True),
    ('name !~ "x264"', {"name": "Film.2020.x264"}, False),
    (r'name ~ "\d{4}"', {"name": "Film.2020"}, True),
    (r'name ~ "say \"hi\""', {"name": 'they say "hi"'}, True),
    (r"name ~ 'it\'s'", {"name": "it's"}, True),
    (r'name ~ "^a\\b$"', {"name": "a\\b"}, False),  # the regex \b: a word boundary
    (r'name ~ "^a\\\\b$"', {"name": "a\\b"}, True),  # the regex \\: one backslash
    ('label in ["tv", "movies"]', {"label": "tv"}, True),
    ('label in ["tv", "movies"]', {"label": "music"}, False),
    ('label in ["tv",]', {"label": "tv"}, True),
    ("label in []", {"label": "tv"}, False),
    ('label not in ["tv", "movies"]', {"label": "music"}, True),
    ('label not in ["tv", "movies"]', {"label": "tv"}, False),
    ("peers in [0, 1]", {"peers": 1}, True),
    ("peers in [0, 1 + 1]", {"peers": 2}, True),
    ("seeding_time in [1d, 2d]", {"seeding_time": 86400}, True),
    ('trackers == "b.org"', {"trackers": ("a.org", "b.org")}, True),
    ('trackers == "c.org"', {"trackers": ("a.org", "b.org")}, False),
    ('trackers != "c.org"', {"trackers": ("a.org", "b.org")}, True),
    ('trackers != "b.org"', {"trackers": ("a.org", "b.org")}, False),
    ('"b.org" == trackers', {"trackers": ("a.org", "b.org")}, True),
    ("trackers == label", {"trackers": ("a.org", "b.org"), "label": "a.org"}, True),
    ('trackers ~ "^B\\."', {"trackers": ("a.org", "b.org")}, True),
    ('trackers ~ "c"', {"trackers": ("a.org", "b.org")}, False),
    ('trackers !~ "c"', {"trackers": ("a.org", "b.org")}, True),
    ('trackers !~ "b"', {"trackers": ("a.org", "b.org")}, False),
    ('trackers in ["x", "b.org"]', {"trackers": ("a.org", "b.org")}, True),
    ('trackers in ["x", "y"]', {"trackers": ("a.org", "b.org")}, False),
    ('trackers not in ["x", "y"]', {"trackers": ("a.org", "b.org")}, True),
    ('trackers not in ["a.org"]', {"trackers": ("a.org", "b.org")}, False),
    # Text in a list of text: the same test as `==` (`not in`: `!=`).
    ('"b.org" in trackers', {"trackers": ("a.org", "b.org")}, True),
    ('"c.org" in trackers', {"trackers": ("a.org", "b.org")}, False),
    ('"c.org" not in trackers', {"trackers": ("a.org", "b.org")}, True),
    ('"b.org" not in trackers', {"trackers": ("a.org", "b.org")}, False),
    ("label in trackers", {"trackers": ("a.org", "b.org"), "label": "b.org"}, True),
    ('"a" in trackers', {"trackers": ()}, False),
    ("ratio + 1 == 3", {"ratio": 2}, True),
    ("ratio - 1 == 1", {"ratio": 2}, True),
    ("ratio * 2 == 4", {"ratio": 2}, True),
    ("ratio / 4 == 0.5", {"ratio": 2}, True),
    ("uploaded / size >= 2", {"uploaded": 20, "size": 10}, True),
    ("uploaded / size >= 2", {"uploaded": 20, "size": 0}, False),
    ("-ratio == -2", {"ratio": 2}, True),
    ("- -ratio == 2", {"ratio": 2}, True),
    ("min(seeders, leechers) == 3", {"seeders": 3, "leechers": 9}, True),
    ("max(seeders, leechers) == 9", {"seeders": 3, "leechers": 9}, True),
    ("max(seeding_time, idle) > 1d", {"seeding_time": 0, "idle": 90000}, True),
    ("min(size, 1GiB) == 1GiB", {"size": 5 * GIB}, True),
    ("finished - added < 1h", {"finished": 1000, "added": 0}, True),
    ("added + 1d < finished", {"finished": 90000, "added": 0}, True),
    ("finished - 1d > added", {"finished": 90000, "added": 0}, True),
    ("added < 1700000000", {"added": 1600000000}, True),
    ("max(added, 1700000000) == 1700000000", {"added": 1600000000}, True),
    ("added - 1000 == 0", {"added": 1000}, True),
    ("up_rate < uploaded / age", {"up_rate": 1, "uploaded": 100, "age": 10}, True),
    ("ratio * size > 1GiB", {"ratio": 2, "size": GIB}, True),
    ("(ratio > 1) == true", {"ratio": 2}, True),
    ("(ratio > 1) == complete", {"ratio": 0, "complete": False}, True),
    ("(ratio > 1) != (seeders > 1)", {"ratio": 2}, True),
    ('(label ~ "a") == false', {"label": "b"}, True),
]


@pytest.mark.parametrize(("text", "facts", "expected"), OPERATORS)
def test_operator(text: str, facts: dict[str, object], expected: bool) -> None:
    assert expected == holds(text, facts)


@pytest.mark.parametrize(("text", "facts", "expected"), OPERATORS)
def test_operator_column_wise(text: str, facts: dict[str, object], expected: bool) -> None:
    # The torrent in question sits between two with nothing known, at index 1.
    assert ([1] if expected else []) == selects(text, [{}, facts, {}], [1])


# --- units -----------------------------------------------------------------------

UNITS = [
    ("seeding_time == 30s", 30),
    ("seeding_time == 5m", 300),
    ("seeding_time == 2h", 7200),
    ("seeding_time == 14d", 14 * 86400),
    ("seeding_time == 2w", 14 * 86400),
    ("seeding_time == 1d12h", 129600),
    ("seeding_time == 1h30m15s", 5415),
    ("seeding_time == 1.5d", 129600),
    ("seeding_time == 90", 90),
    ("size == 1B", 1),
    ("size == 1KB", 1000),
    ("size == 1MB", 1000**2),
    ("size == 1GB", 1000**3),
    ("size == 1TB", 1000**4),
    ("size == 1KiB", 1024),
    ("size == 1MiB", 1024**2),
    ("size == 1GiB", 1024**3),
    ("size == 1TiB", 1024**4),
    ("size == 1.5GiB", 1610612736),
    ("size == 2 * 1GiB", 2 * GIB),
    ("size == 1GiB + 1KiB", GIB + 1024),
    ("size == 1024", 1024),
]


@pytest.mark.parametrize(("text", "value"), UNITS)
def test_unit(text: str, value: int) -> None:
    name = text.split(maxsplit=1)[0]
    assert (True, False) == (holds(text, {name: value}), holds(text, {name: value + 1}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("1d12h", 129600), ("90", 90), (" 2.5 ", 2.5), ("0.5m", 30)],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert expected == parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("50GiB", 50 * GIB), ("500MB", 500 * 10**6), ("1024", 1024)]
)
def test_parse_size(text: str, expected: int) -> None:
    assert expected == parse_size(text)


@pytest.mark.parametrize(
    ("parse", "text"),
    [(parse_duration, "1GiB"), (parse_duration, "30 s"), (parse_duration, "-5"),
     (parse_duration, "5M"), (parse_size, "5d"), (parse_size, "5 GiB"), (parse_size, "5gib")],
)  # fmt: skip
def test_parse_quantity_refuses(parse: Callable[[str], float], text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse(text)


# --- precedence ------------------------------------------------------------------

PRECEDENCE = [
    # or < and < not < comparison < + - < * / < unary -
    ("true or true and false", True),
    ("(true or true) and false", False),
    ("false and false or true", True),
    ("false and (false or true)", False),
    ("not false and false", False),
    ("not (false and false)", True),
    ("not true or true", True),
    ("not 1 > 2", True),
    ("1 + 2 * 3 == 7", True),
    ("(1 + 2) * 3 == 9", True),
    ("8 - 2 - 1 == 5", True),
    ("8 - (2 - 1) == 7", True),
    ("8 / 4 / 2 == 1", True),
    ("8 / (4 / 2) == 4", True),
    ("2 * 3 - 4 / 2 == 4", True),
    ("-2 * 3 == -6", True),
    ("- 2 - 3 == -5", True),
    ("1 + 1 == 2 and 2 * 2 == 4", True),
    ("1 < 2 == true", False),  # a comparison does not chain: `2 == true` is an error
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE[:-1])
def test_precedence(text: str, expected: bool) -> None:
    assert expected == holds(text, {})


def test_comparisons_do_not_chain() -> None:
    assert (
        6,
        "expected `and`, `or` or the end, found `==`\njoin conditions with `and` or `or`",
    ) == (fails(PRECEDENCE[-1][0]))


# --- unknown values --------------------------------------------------------------

UNKNOWN = [
    # (condition, holds when `seeders`/`trackers`/`complete` are unknown)
    ("seeders > 3", False),
    ("seeders <= 3", False),
    ("seeders == 3", False),
    ("seeders != 3", False),
    ("not (seeders > 3)", True),
    ("seeders + 1 > 0", False),
    ("-seeders < 0", False),
    ("max(seeders, 1) > 0", False),
    ("seeders in [0, 1]", False),
    ("seeders not in [0, 1]", False),
    ("seeders == leechers", False),
    ('trackers == "a"', False),
    ('trackers != "a"', False),
    ('trackers ~ "a"', False),
    ('trackers !~ "a"', False),
    ('trackers in ["a"]', False),
    ('trackers not in ["a"]', False),
    ('"a" in trackers', False),
    ('"a" not in trackers', False),
    ('label ~ "a"', False),
    ('label !~ "a"', False),
    ("complete", False),
    ("not complete", True),
    ("complete == false", False),
    ("complete or true", True),
]


@pytest.mark.parametrize(("text", "expected"), UNKNOWN)
@pytest.mark.parametrize("facts", [{}, {"seeders": None, "trackers": None, "complete": None}])
def test_unknown_value(text: str, expected: bool, facts: dict[str, object]) -> None:
    assert expected == holds(text, facts)
    assert ([0] if expected else []) == selects(text, [facts], [0])


def test_select_keeps_the_candidates_order_and_ignores_the_others() -> None:
    facts = [{"ratio": r, "complete": c} for r, c in [(3, True), (0, True), (5, False), (4, True)]]
    assert [3, 0] == selects("ratio > 2 and complete or ratio == 0", facts, [3, 2, 0])
    assert [2] == selects("not (ratio > 2 and complete)", facts, [3, 2, 0])


def test_a_hand_built_condition_selects_row_by_row() -> None:
    condition = hand_built("odd", {"n"}, lambda f: f["n"] % 2 == 1)
    assert [1, 3] == condition.select({"n": [0, 1, 2, 3]}, range(4))


def test_condition_lists_the_names_it_reads() -> None:
    condition = parse_condition("complete and (ratio > 1 or max(idle, age) > 2d)", NAMES)
    names = frozenset({"complete", "ratio", "idle", "age"})
    expected = Condition(condition.text, names, condition.select)
    assert expected == condition


def test_only_the_given_names_are_known() -> None:
    condition = parse_condition("foo > 1", {"foo": NAMES["ratio"]})
    assert [0] == condition.select({"foo": [2, 0]}, [0, 1])
    with pytest.raises(ExprError, match="unknown field `ratio`"):
        parse_condition("ratio > 1", {"foo": NAMES["ratio"]})


# --- errors ----------------------------------------------------------------------

FIELDS_HINT = 'Fields are listed in README under "Condition fields".'
ERRORS = [
    ("", 0, "the condition is empty\nwrite one like `complete and ratio >= 2`"),
    ("complete and leechrs == 0", 13,
     f"unknown field `leechrs`\ndid you mean `leechers`? {FIELDS_HINT}"),
    ("zzz > 1", 0, f"unknown field `zzz`\n{FIELDS_HINT}"),
    ("seechers > 1", 0,
     f"unknown field `seechers`\ndid you mean `leechers` or `seeders`? {FIELDS_HINT}"),
    ("complete AND ratio > 1", 9,
     "expected `and`, `or` or the end, found `AND`\nkeywords are lower case: `and`"),
    ("NOT complete", 0, "unknown field `NOT`\nkeywords are lower case: `not`"),
    ("ratio > 1GiB", 8, "cannot compare `ratio` (a number) with `1GiB` (a size)\n"
     "`ratio` is a number; compare it with a number like 2.0"),
    ("1GiB < ratio", 0, "cannot compare `ratio` (a number) with `1GiB` (a size)\n"
     "`ratio` is a number; compare it with a number like 2.0"),
    ("size > 2d", 7, "cannot compare `size` (a size) with `2d` (a duration)\n"
     "`size` is a size; compare it with a size like 500MB or 1.5GiB"),
    ("seeding_time > 5GB", 15, "cannot compare `seeding_time` (a duration) with `5GB` (a size)\n"
     "`seeding_time` is a duration; compare it with a duration like 12h or 1d12h"),
    ("finished > 2d", 11, "cannot compare `finished` (a timestamp) with `2d` (a duration)\n"
     "`finished` is a timestamp; compare it with unix seconds, or use age for time elapsed"),
    ('label == 3', 9, "cannot compare `label` (text) with `3` (a number)\n"
     '`label` is text; compare it with text like "abc" or match it with ~ "regex"'),
    ('ratio == "2"', 9, 'cannot compare `ratio` (a number) with `"2"` (text)\n'
     "`ratio` is a number; compare it with a number like 2.0"),
    ("complete == 1", 12, "cannot compare `complete` (true or false) with `1` (a number)\n"
     "`complete` is true or false; use it alone (`complete`, `not complete`) or with == true"),
    ('trackers == trackers', 12, "cannot compare `trackers` (a list of text) with `trackers` "
     '(a list of text)\n`trackers` is a list of text; compare it with text like "abc" or match '
     "it with ~"),
    ('label < "m"', 6, '`<` compares numbers, not text\n'
     '`label` is text; compare it with text like "abc" or match it with ~ "regex"'),
    ("complete > false", 9, "`>` compares numbers, not true or false\n`complete` is true or "
     "false; use it alone (`complete`, `not complete`) or with == true"),
    ("ratio", 0, "`ratio` is a number, not a condition\ncompare it with a number like 2.0"),
    ("complete and size", 13, "`size` is a size, not a condition\n"
     "compare it with a size like 500MB or 1.5GiB"),
    ("not label", 4, '`label` is text, not a condition\ncompare it with text like "abc" or '
     'match it with ~ "regex"'),
    ("ratio ~ \"2\"", 6, "`~` matches text, but `ratio` is a number\n"
     "compare it with a number like 2.0"),
    ("name ~ label", 7,
     '`~` needs a regular expression\nwrite it in quotes, like name ~ "x264|x265"'),
    ('name ~ "x(26"', 9, "invalid regular expression: missing ), unterminated subpattern"),
    ('name ~ "a\\"(b"', 7, "invalid regular expression: missing ), unterminated subpattern"),
    ('name ~ "a{99999999999}"', 7, "invalid regular expression: the repetition number is too "
     "large\nwrite a smaller count in { }, or + or * for any number"),
    ('name ~ "[[a]"', 7, "unclear regular expression: Possible nested set at position 1\n"
     r"inside [...], write \[ for a literal [ (and \- \& \~ \| likewise)"),
    ("foo(1, 2) > 1", 0, "unknown function `foo`\nthe functions are min(a, b) and max(a, b)"),
    ("min(ratio) > 1", 9, "expected `,` between the two values of min(a, b), found `)`"),
    ("max(ratio, 1, 2) > 1", 12, "expected `)` after the two values of max(a, b), found `,`"),
    ("max(size, 1d) > 1", 10, "cannot take the max of `size` (a size) and `1d` (a duration)\n"
     "max(a, b) takes two values of the same sort"),
    ("size + 1d > 0", 7, "cannot add `size` (a size) and `1d` (a duration)\n"
     "add values of the same sort; a plain number goes with any"),
    ("added + finished > 0", 8, "cannot add `added` (a timestamp) and `finished` (a timestamp)\n"
     "add values of the same sort; a plain number goes with any"),
    ("age - added > 0", 6, "cannot subtract `age` (a duration) and `added` (a timestamp)\n"
     "subtract values of the same sort; a timestamp minus a timestamp is a duration"),
    ("size * size > 0", 7, "cannot multiply `size` (a size) and `size` (a size)\n"
     "multiply by a plain number or by a number field like ratio"),
    ("ratio / size > 0", 8, "cannot divide `ratio` (a number) and `size` (a size)\n"
     "divide by a number; a size by a size or a duration by a duration gives a number"),
    ("size / 0 > 1", 7, "division by zero"),
    ("-label == \"a\"", 0, "cannot negate `label`\n"
     '`label` is text; compare it with text like "abc" or match it with ~ "regex"'),
    ("-added < 0", 0, "cannot negate `added`\n`added` is a timestamp; compare it with unix "
     "seconds, or use age for time elapsed"),
    ("ratio = 2", 6, "`=` is not an operator\nwrite `==`"),
    ("ratio > 1 && complete", 10, "`&&` is not an operator\nwrite `and`"),
    ("ratio > 1 || complete", 10, "`||` is not an operator\nwrite `or`"),
    ("!complete", 0, "`!` is not an operator\nwrite `not`"),
    ("ratio <> 2", 6, "`<>` is not an operator\nwrite `!=`"),
    ("ratio > 1 # note", 10, "unexpected character `#`"),
    ("name == é", 8, "unexpected character `é`"),
    ('name == "abc', 8, 'this string is not closed\nend it with the same quote; write \\" for '
     "a quote inside"),
    ("seeding_time > 1x", 15, "`1x` is not a number, duration or size\ndurations use s m h d w "
     "(like 30s or 1d12h); sizes use B KB MB GB TB (x1000) or KiB MiB GiB TiB (x1024), like "
     "1.5GiB"),
    ("size > 5gb", 7, "`5gb` is not a number, duration or size\ndurations use s m h d w "
     "(like 30s or 1d12h); sizes use B KB MB GB TB (x1000) or KiB MiB GiB TiB (x1024), like "
     "1.5GiB"),
    ("(ratio > 1", 10, "expected `)` to close the `(`, found the end"),
    ("ratio > 1)", 9, "expected `and`, `or` or the end, found `)`\n"
     "join conditions with `and` or `or`"),
    ("ratio >", 7, "expected a value, found the end\na value is a field like ratio, a number "
     "like 2 or 14d, a quoted string, or ( ... )"),
    ("and", 0, "expected a value, found `and`\na value is a field like ratio, a number like 2 "
     "or 14d, a quoted string, or ( ... )"),
    ("label in ratio", 9, "expected `[` to start a list, found `ratio`\n"
     'write a list like ["tv", "movies"], or a list of text like views'),
    ("label in added - 1", 9, "expected `[` to start a list, found `added - 1`\n"
     'write a list like ["tv", "movies"], or a list of text like views'),
    ('label in ["a" "b"]', 14, "expected `]` or `,` in the list, found `\"b\"`"),
    ("label in [name]", 10, "list items must be known before any torrent is seen\n"
     'write literal values, like ["movies", "tv"] or [0, 1]'),
    ('label in ["a", 1]', 15, "cannot compare `label` (text) with `1` (a number)\n"
     '`label` is text; compare it with text like "abc" or match it with ~ "regex"'),
    ("ratio not 2", 6, "expected `and`, `or` or the end, found `not`\n"
     "join conditions with `and` or `or`"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "column", "message"), ERRORS)
def test_error(text: str, column: int, message: str) -> None:
    assert (column, message) == fails(text)


def test_error_is_a_config_error_with_the_message() -> None:
    with pytest.raises(ExprError) as caught:
        parse_condition("ratio >", NAMES)
    assert caught.value.message == str(caught.value)


# --- every value has a range; evaluation never raises -----------------------------

HUGE = "1000000000000000000"  # 10^18, the largest literal
RANGE_HINT = (
    "write a number of at most 1000000000000000000 (10^18); durations count seconds, sizes bytes"
)
NESTING_HINT = "write at most 32 levels of ( ), `not` and `-` inside each other"
NESTED = f"the condition is nested too deeply\n{NESTING_HINT}"
LENGTH_HINT = "a condition may chain at most 100 operations: split it across rules"
OUT_OF_RANGE = [
    ("ratio > " + "9" * 5000, 8, f"`99999999999999999999…` is out of range\n{RANGE_HINT}"),
    ("age > " + "9" * 400 + "d", 6, f"`99999999999999999999…` is out of range\n{RANGE_HINT}"),
    ("size > " + "9" * 400 + "GiB", 7, f"`99999999999999999999…` is out of range\n{RANGE_HINT}"),
    ("ratio + " + "9" * 309 + " > 9", 8, f"`99999999999999999999…` is out of range\n{RANGE_HINT}"),
    ("age > 1000000000000000001s", 6, f"`1000000000000000001s` is out of range\n{RANGE_HINT}"),
    ("size > 1000000TiB", 7, f"`1000000TiB` is out of range\n{RANGE_HINT}"),
    (
        f"ratio > 0.5 + {HUGE}" + f" * {HUGE}" * 17,  # 10^324: beyond a float
        8,
        f"`0.5 + 1000000000000000000 * 100000000000…` is too large to compute\n{RANGE_HINT}",
    ),
    ("(" * 40 + "ratio" + ")" * 40 + " > 1", 32, NESTED),
    ("not " * 40 + "complete", 128, NESTED),
    ("-" * 40 + "ratio > 1", 32, NESTED),
    ("ratio" + " + ratio" * 150 + " > 1", 0, f"this is too long to compute\n{LENGTH_HINT}"),
    ('name ~ "' + "(" * 2000 + ")" * 2000 + '"', 7,
     "invalid regular expression: nested too deeply\nwrite fewer groups inside each other"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "column", "message"), OUT_OF_RANGE)
def test_out_of_range(text: str, column: int, message: str) -> None:
    assert (column, message) == fails(text)


def test_the_largest_literals_are_accepted() -> None:
    assert holds(f"size >= {HUGE} and age > {HUGE}s", {"size": 10**18, "age": 10**18 + 1})


OVERFLOWING = [
    f"ratio + {HUGE}" + f" * {HUGE}" * 17 + " > 9",  # 10^324 as a float
    f"{HUGE}" + f" * {HUGE}" * 17 + " / ratio > 9",
    "uploaded / (size - size) > 1",
    f"ratio * 0 + {HUGE}" + f" * {HUGE}" * 17 + " / (ratio - ratio) >= 0",
]


@pytest.mark.parametrize("text", OVERFLOWING)
def test_overflow_and_division_by_zero_are_unknown(text: str) -> None:
    condition = parse_condition(text, NAMES)
    columns: dict[str, list[object]] = {
        "ratio": [1.5, None, 0.0],
        "uploaded": [5, None, 0],
        "size": [5, 7, 0],
    }
    assert [] == condition.select(columns, [0, 1, 2])
    negated = parse_condition(f"not ({text})", NAMES)
    assert [0, 1, 2] == negated.select(columns, [0, 1, 2])


# --- round trips -------------------------------------------------------------------

Facts = dict[str, Any]
Evaluate = Callable[[Facts], Any]


class Node(NamedTuple):
    """An expression: its text, a reference evaluation, its precedence level."""

    text: str
    evaluate: Evaluate
    level: int  # 1 or, 2 and, 3 not, 4 comparison, 5 + -, 6 * /, 7 unary, 8 atom


ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "min": min,
    "max": max,
}
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
LEVELS = {"or": 1, "and": 2, "+": 5, "-": 5, "*": 6, "/": 6}


def wrap(node: Node, level: int) -> str:
    return f"({node.text})" if node.level < level else node.text


def field(name: str) -> Node:
    return Node(name, lambda f: f.get(name), 8)


def literal(pair: tuple[str, object]) -> Node:
    text, value = pair
    return Node(text, lambda f: value, 8)


def arithmetic(op: str, left: Node, right: Node) -> Node:
    apply = ARITHMETIC[op]

    def evaluate(f: Facts) -> Any:
        a, b = left.evaluate(f), right.evaluate(f)
        return None if a is None or b is None else apply(a, b)

    if op in ("min", "max"):
        return Node(f"{op}({left.text}, {right.text})", evaluate, 8)
    level = LEVELS[op]
    # Right operands are bracketed at the same level: a - (b - c), and floats
    # do not even add associatively.
    return Node(f"{wrap(left, level)} {op} {wrap(right, level + 1)}", evaluate, level)


def negative(node: Node) -> Node:
    return Node(f"-{wrap(node, 7)}", lambda f: None if (v := node.evaluate(f)) is None else -v, 7)


def comparison(op: str, left: Node, right: Node) -> Node:
    compare = COMPARISONS[op]

    def evaluate(f: Facts) -> bool:
        a, b = left.evaluate(f), right.evaluate(f)
        return a is not None and b is not None and compare(a, b)

    return Node(f"{left.text} {op} {right.text}", evaluate, 4)


def junction(word: str, left: Node, right: Node) -> Node:
    level = LEVELS[word]
    text = f"{wrap(left, level)} {word} {wrap(right, level + 1)}"
    if word == "and":
        return Node(text, lambda f: left.evaluate(f) and right.evaluate(f), level)
    return Node(text, lambda f: left.evaluate(f) or right.evaluate(f), level)


def negation(node: Node) -> Node:
    return Node(f"not {wrap(node, 3)}", lambda f: not node.evaluate(f), 3)


def quantities(fields: list[str], literals: list[tuple[str, object]]) -> st.SearchStrategy[Node]:
    """Arithmetic over values of one sort: fields and literals of that unit, scaled by numbers."""
    scales = st.sampled_from([("2", 2), ("0.5", 0.5), ("3", 3)]).map(literal)
    leaves = st.sampled_from(fields).map(field) | st.sampled_from(literals).map(literal)

    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        ops = st.sampled_from(["+", "-", "min", "max"])
        return (
            st.builds(arithmetic, ops, inner, inner)
            | st.builds(arithmetic, st.sampled_from(["*", "/"]), inner, scales)
            | st.builds(arithmetic, st.just("*"), scales, inner)
            | st.builds(negative, inner)
        )

    return st.recursive(leaves, extend, max_leaves=5)


SORTS: list[tuple[list[str], list[tuple[str, object]]]] = [
    (["ratio", "seeders", "leechers"], [("0", 0), ("1", 1), ("2.5", 2.5), ("10", 10)]),
    (["age", "idle"], [("30s", 30), ("1d12h", 129600), ("2w", 1209600), ("90", 90)]),
    (["size", "uploaded"], [("1.5GiB", 1610612736), ("500MB", 500_000_000), ("1KiB", 1024)]),
    (["up_rate", "down_rate"], [("100KiB/s", 102400), ("1MB/s", 10**6), ("500/s", 500)]),
]
TEXTS = st.sampled_from(["", "a", "ab", "b.org", "A"])


def comparisons() -> st.SearchStrategy[Node]:
    ops = st.sampled_from(list(COMPARISONS))
    return st.one_of(
        [st.builds(comparison, ops, quantities(*sort), quantities(*sort)) for sort in SORTS]
    )


def text_test(name: str, negated: bool, found: Callable[[tuple[str, ...]], bool]) -> Evaluate:
    """Unknown is false; a list holds when any element does, and `!=` when none does."""

    def evaluate(f: Facts) -> bool:
        value = f.get(name)
        if value is None:
            return False
        return found(tuple(value) if name == "trackers" else (value,)) != negated

    return evaluate


def text_tests() -> st.SearchStrategy[Node]:
    def equal(name: str, value: str, negated: bool) -> Node:
        evaluate = text_test(name, negated, lambda items: value in items)
        return Node(f'{name} {"!=" if negated else "=="} "{value}"', evaluate, 4)

    def match(name: str, value: str, negated: bool) -> Node:
        evaluate = text_test(
            name, negated, lambda items: any(value.lower() in x.lower() for x in items)
        )
        return Node(f'{name} {"!~" if negated else "~"} "{value}"', evaluate, 4)

    def member(name: str, values: list[str], negated: bool) -> Node:
        evaluate = text_test(name, negated, lambda items: any(x in values for x in items))
        shown = ", ".join(f'"{value}"' for value in values)
        return Node(f"{name} {'not in' if negated else 'in'} [{shown}]", evaluate, 4)

    names = st.sampled_from(["label", "trackers"])
    return (
        st.builds(equal, names, TEXTS, st.booleans())
        | st.builds(match, names, TEXTS, st.booleans())
        | st.builds(member, names, st.lists(TEXTS, max_size=3), st.booleans())
    )


def flags() -> st.SearchStrategy[Node]:
    def flag(name: str) -> Node:
        return Node(name, lambda f: f.get(name) is True, 8)

    return st.sampled_from(["complete", "private"]).map(flag) | st.sampled_from(
        [("true", True), ("false", False)]
    ).map(literal)


def conditions() -> st.SearchStrategy[Node]:
    leaves = comparisons() | text_tests() | flags()

    def extend(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        words = st.sampled_from(["and", "or"])
        return st.builds(junction, words, inner, inner) | st.builds(negation, inner)

    return st.recursive(leaves, extend, max_leaves=8)


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


NUMBERS = st.integers(-3, 12) | st.sampled_from([0.5, 2.5, 1e9, -0.25])
FACTS = st.fixed_dictionaries(
    {},
    optional={
        **{name: maybe(NUMBERS) for name in ("ratio", "seeders", "leechers")},
        **{name: maybe(st.integers(0, 3 * 10**6)) for name in ("age", "idle")},
        **{name: maybe(st.integers(0, 2 * 10**9)) for name in ("size", "uploaded")},
        "complete": maybe(st.booleans()),
        "private": maybe(st.booleans()),
        "label": maybe(TEXTS),
        "trackers": maybe(st.lists(TEXTS, max_size=3).map(tuple)),
    },
)


@settings(max_examples=300, deadline=None)
@given(conditions(), st.lists(FACTS, min_size=1, max_size=5))
def test_formatted_expressions_parse_to_the_reference_semantics(
    node: Node, facts: list[Facts]
) -> None:
    condition = parse_condition(node.text, NAMES)
    expected = [i for i, f in enumerate(facts) if node.evaluate(f)]
    assert expected == condition.select(as_columns(facts), range(len(facts)))


@settings(max_examples=300, deadline=None)
@given(conditions(), st.lists(FACTS, min_size=1, max_size=6), st.data())
def test_select_among_candidates_agrees_with_the_reference_semantics(
    node: Node, facts: list[Facts], data: st.DataObject
) -> None:
    condition = parse_condition(node.text, NAMES)
    candidates = data.draw(
        st.lists(st.sampled_from(range(len(facts))), unique=True) | st.just(range(len(facts)))
    )
    expected = [i for i in candidates if node.evaluate(facts[i])]
    assert expected == condition.select(as_columns(facts), candidates)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ratio seders<>=!~()[],.\"'-+*/1dGiB andornot"))))
def test_any_text_parses_or_fails_with_a_column_inside_it(text: str) -> None:
    try:
        parse_condition(text, NAMES)
    except ExprError as exc:
        assert 0 <= exc.column <= len(text)
