"""Static types and closure factories for the condition language.

The parser checks types with the tables here, then builds each condition from
these small factories. Why so many: each returns a closure specialised for its
case, so evaluating a rule costs a few calls and no allocation per torrent.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from rtorrentd.conditions.lex import Type
from rtorrentd.torrent import Kind

Test = Callable[[Mapping[str, Any]], bool]
Getter = Callable[[Mapping[str, Any]], Any]

# --- types -------------------------------------------------------------------

# Kind has no notion of bytes; these NUMBER fields count bytes (or bytes/s).
SIZE_FIELDS = frozenset({"size", "done", "uploaded", "downloaded", "up_rate", "down_rate"})
KIND_TYPES = {
    Kind.NUMBER: Type.NUMBER,
    Kind.TIMESTAMP: Type.TIMESTAMP,
    Kind.DURATION: Type.DURATION,
    Kind.STRING: Type.STRING,
    Kind.BOOL: Type.BOOL,
    Kind.STRINGS: Type.STRINGS,
}
NUMERIC = frozenset({Type.NUMBER, Type.SIZE, Type.DURATION, Type.TIMESTAMP, Type.PLAIN})
ADVICE = {
    Type.BOOL: ("true or false", "use it alone (`complete`, `not complete`) or with == true"),
    Type.STRING: ("text", 'compare it with text like "abc" or match it with ~ "regex"'),
    Type.STRINGS: ("a list of text", 'compare it with text like "abc" or match it with ~'),
    Type.NUMBER: ("a number", "compare it with a number like 2.0"),
    Type.SIZE: ("a size", "compare it with a size like 500MB or 1.5GiB"),
    Type.DURATION: ("a duration", "compare it with a duration like 12h or 1d12h"),
    Type.TIMESTAMP: ("a timestamp", "compare it with unix seconds, or use age for time elapsed"),
    Type.PLAIN: ("a number", "compare it with a number"),
}

_N, _S, _D, _T = Type.NUMBER, Type.SIZE, Type.DURATION, Type.TIMESTAMP
_ARITH_TYPES: Mapping[tuple[str, Type, Type], Type] = {
    **{(op, x, x): x for op in "+-" for x in (_N, _S, _D)},
    ("+", _T, _D): _T,
    ("+", _D, _T): _T,
    ("-", _T, _D): _T,
    ("-", _T, _T): _D,
    **{("*", a, b): r for a, b, r in ((_N, _N, _N), (_N, _S, _S), (_S, _N, _S), (_N, _D, _D))},
    ("*", _D, _N): _D,
    **{("/", a, b): r for a, b, r in ((_N, _N, _N), (_S, _N, _S), (_D, _N, _D), (_S, _S, _N))},
    ("/", _D, _D): _N,
    ("/", _S, _D): _S,  # bytes per second: a rate, compared with sizes like up_rate
    **{(f, x, x): x for f in ("min", "max") for x in (_N, _S, _D, _T)},
}
ARITH_HINTS = {
    "+": "add values of the same sort; a plain number goes with any",
    "-": "subtract values of the same sort; a timestamp minus a timestamp is a duration",
    "*": "multiply by a plain number or by a number field like ratio",
    "/": "divide by a number; a size by a size or a duration by a duration gives a number",
    "min": "min(a, b) takes two values of the same sort",
    "max": "max(a, b) takes two values of the same sort",
}
VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}


def arith_type(op: str, left: Type, right: Type) -> Type | None:
    """The type of `left op right`, or None if they do not go together."""
    if left is Type.PLAIN and right is Type.PLAIN:
        return Type.PLAIN
    return _ARITH_TYPES.get((op, _adapt(op, left, right), _adapt(op, right, left)))


def _adapt(op: str, plain: Type, other: Type) -> Type:
    """A plain number takes the unit of the value it is added to; it scales as a number."""
    if plain is not Type.PLAIN:
        return plain
    if op in ("*", "/"):
        return Type.NUMBER
    if op in ("+", "-") and other is Type.TIMESTAMP:
        return Type.DURATION  # seconds added to a time
    return other


def comparable(left: Type, right: Type) -> bool:
    """Whether `==` and friends may compare the two; a plain number goes with any unit."""
    if left is right:
        return left is not Type.STRINGS
    if Type.PLAIN in (left, right):
        return left in NUMERIC and right in NUMERIC
    return {left, right} == {Type.STRING, Type.STRINGS}


# --- closures ------------------------------------------------------------------

FIELD_CONST: Mapping[str, Callable[[str, Any], Test]] = {
    "==": lambda n, c: lambda f: f.get(n) == c,
    "!=": lambda n, c: lambda f: (v := f.get(n)) is not None and v != c,
    "<": lambda n, c: lambda f: (v := f.get(n)) is not None and v < c,
    "<=": lambda n, c: lambda f: (v := f.get(n)) is not None and v <= c,
    ">": lambda n, c: lambda f: (v := f.get(n)) is not None and v > c,
    ">=": lambda n, c: lambda f: (v := f.get(n)) is not None and v >= c,
}
COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
MIRROR = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _divide(a: Any, b: Any) -> Any:
    """Division; by zero gives unknown, as `uploaded / size` of an empty torrent should."""
    return a / b if b else None


ARITH: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "min": min,
    "max": max,
}


def compare_values(op: str, left: Getter, right: Getter) -> Test:
    """`left op right` for any two values; false when either is unknown."""
    compare = COMPARE[op]
    return lambda f: (a := left(f)) is not None and (b := right(f)) is not None and compare(a, b)


def contains(op: str, items: Getter, item: Getter) -> Test:
    """`==` / `!=` of a list of text and a text: any element equal / none equal."""
    if op == "==":
        return lambda f: (a := items(f)) is not None and (b := item(f)) is not None and b in a
    return lambda f: (a := items(f)) is not None and (b := item(f)) is not None and b not in a


def combine(op: str, left: Getter, right: Getter) -> Getter:
    """Arithmetic or min/max; unknown when either side is."""
    apply = ARITH[op]
    return lambda f: None if (a := left(f)) is None or (b := right(f)) is None else apply(a, b)


def negate(value: Getter) -> Getter:
    """Unary minus; unknown stays unknown."""
    return lambda f: None if (v := value(f)) is None else -v


def holds(value: Getter, predicate: Callable[[Any], bool]) -> Test:
    """`predicate(value)` when the value is known, else false."""
    return lambda f: (v := value(f)) is not None and predicate(v)


def field_holds(name: str, predicate: Callable[[Any], bool]) -> Test:
    """`holds` for a single field, without the call to a getter."""
    return lambda f: (v := f.get(name)) is not None and predicate(v)


Flag = tuple[str, bool]  # a bool field, and whether the test wants it true or not true


def flag_test(flag: Flag) -> Test:
    """`complete` holds only when known true; `not complete` whenever not known true."""
    name, wanted = flag
    if wanted:
        return lambda f: f.get(name) is True
    return lambda f: f.get(name) is not True


def all_of(tests: tuple[Test, ...], flag: Flag | None = None) -> Test:
    """`a and b and ...`; a leading bool field (`complete and ...`) is inlined."""
    first, second, *rest = tests
    remainder = all_of((second, *rest)) if rest else second
    if flag is not None:
        name, wanted = flag
        if wanted:
            return lambda f: f.get(name) is True and remainder(f)
        return lambda f: f.get(name) is not True and remainder(f)
    return lambda f: first(f) and remainder(f)


def any_of(tests: tuple[Test, ...], flag: Flag | None = None) -> Test:
    """`a or b or ...`; a leading bool field is inlined."""
    first, second, *rest = tests
    remainder = any_of((second, *rest)) if rest else second
    if flag is not None:
        name, wanted = flag
        if wanted:
            return lambda f: f.get(name) is True or remainder(f)
        return lambda f: f.get(name) is not True or remainder(f)
    return lambda f: first(f) or remainder(f)


def field_in(name: str, items: frozenset[object], negated: bool) -> Test:
    """`label in [...]`: a set lookup; None is never in the set, so unknown is false."""
    if negated:
        return lambda f: (v := f.get(name)) is not None and v not in items
    return lambda f: f.get(name) in items


def match_predicate(
    search: Callable[[str], object], many: bool, negated: bool
) -> Callable[[Any], bool]:
    """`~` / `!~` on a known text, or on a list of texts (any element / none)."""
    if many:
        if negated:
            return lambda v: not any(map(search, v))
        return lambda v: any(map(search, v))
    if negated:
        return lambda v: search(v) is None
    return lambda v: search(v) is not None


def member_predicate(items: frozenset[object], many: bool, negated: bool) -> Callable[[Any], bool]:
    """`in` / `not in` on a known value, or on a list of texts (any element / none)."""
    if many:
        return items.isdisjoint if negated else lambda v: not items.isdisjoint(v)
    return items.__contains__ if not negated else lambda v: v not in items


def constant(value: object) -> Getter:
    """A value known at parse time."""
    return lambda f: value
