"""Static types and operators of the condition language.

The parser checks types with the tables here; `select` builds the column-wise
closures from the operators and predicates here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from rtorrentd.conditions.lex import Type
from rtorrentd.vocabulary import Kind

# --- types -------------------------------------------------------------------

KIND_TYPES = {
    Kind.NUMBER: Type.NUMBER,
    Kind.SIZE: Type.SIZE,
    Kind.RATE: Type.RATE,
    Kind.TIMESTAMP: Type.TIMESTAMP,
    Kind.DURATION: Type.DURATION,
    Kind.STRING: Type.STRING,
    Kind.BOOL: Type.BOOL,
    Kind.STRINGS: Type.STRINGS,
}
NUMERIC = frozenset({Type.NUMBER, Type.SIZE, Type.RATE, Type.DURATION, Type.TIMESTAMP, Type.PLAIN})
ADVICE = {
    Type.BOOL: ("true or false", "use it alone (`complete`, `not complete`) or with == true"),
    Type.STRING: ("text", 'compare it with text like "abc" or match it with ~ "regex"'),
    Type.STRINGS: ("a list of text", 'compare it with text like "abc" or match it with ~'),
    Type.NUMBER: ("a number", "compare it with a number like 2.0"),
    Type.SIZE: ("a size", "compare it with a size like 500MB or 1.5GiB"),
    Type.RATE: ("a rate", "compare it with a rate like 100KiB/s (or a size like 100KiB)"),
    Type.DURATION: ("a duration", "compare it with a duration like 12h or 1d12h"),
    Type.TIMESTAMP: ("a timestamp", "compare it with unix seconds, or use age for time elapsed"),
    Type.PLAIN: ("a number", "compare it with a number"),
}

_N, _S, _R, _D, _T = Type.NUMBER, Type.SIZE, Type.RATE, Type.DURATION, Type.TIMESTAMP
_ARITH_TYPES: Mapping[tuple[str, Type, Type], Type] = {
    **{(op, x, x): x for op in "+-" for x in (_N, _S, _R, _D)},
    ("+", _T, _D): _T,
    ("+", _D, _T): _T,
    ("-", _T, _D): _T,
    ("-", _T, _T): _D,
    **{("*", a, b): r for a, b, r in ((_N, _N, _N), (_N, _S, _S), (_S, _N, _S), (_N, _D, _D))},
    ("*", _D, _N): _D,
    **{("/", a, b): r for a, b, r in ((_N, _N, _N), (_S, _N, _S), (_D, _N, _D), (_S, _S, _N))},
    ("/", _D, _D): _N,
    # Rates: bytes per second.
    **{("*", a, b): r for a, b, r in ((_N, _R, _R), (_R, _N, _R), (_R, _D, _S), (_D, _R, _S))},
    **{("/", a, b): r for a, b, r in ((_S, _D, _R), (_R, _N, _R), (_R, _R, _N), (_S, _R, _D))},
    **{(f, x, x): x for f in ("min", "max") for x in (_N, _S, _R, _D, _T)},
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


def comparable(left: Type, right: Type, constant: Type | None = None) -> bool:
    """Whether `==` and friends may compare the two; a plain number goes with any unit.

    `constant` is the type of the side known at parse time, if one is: a rate goes
    with a size written as a literal, read per second (`up_rate > 100KiB`), as an
    rtorrent user reads `100 KiB` next to a speed; not with a size field.
    """
    if {left, right} == {Type.RATE, Type.SIZE}:
        return constant is Type.SIZE
    if left is right:
        return left is not Type.STRINGS
    if Type.PLAIN in (left, right):
        return left in NUMERIC and right in NUMERIC
    return {left, right} == {Type.STRING, Type.STRINGS}


# --- operators -----------------------------------------------------------------

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
    return a / b if b else None  # an ArithmeticError beyond: see arith_or_unknown


ARITH: Mapping[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "min": min,
    "max": max,
}


def arith_or_unknown(op: str, a: Any, b: Any) -> Any:
    """`a op b`, or None (unknown) where Python cannot compute it: an int too large
    for a float (`ratio + 10**400`), a quotient too large for one."""
    try:
        return ARITH[op](a, b)
    except ArithmeticError:
        return None


Flag = tuple[str, bool]  # a bool field, and whether the test wants it true or not true


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
