"""Column-wise forms of the condition language: select the torrents that match.

The parser builds each condition from the factories here: a closure that judges
many torrents at once from columns.

Why: row by row, every node of a condition is a Python call per torrent (10 rules
over 50,000 torrents are millions of calls). Column-wise, a field compared with a
constant is one list comprehension over the candidates, `and` hands its right side
only the survivors of its left, and no per-torrent dict is ever built.

Shapes:
- `Columns` maps a name to its values, index-aligned with the snapshot; None is
  unknown, and a name missing from the columns is unknown for every torrent.
- Candidates are the indices still in question, in a fixed order.
- A `Select` returns the candidates for which the condition holds, in their order.
- A `Gather` returns the values of a sub-expression for the candidates, aligned
  with them.

Unknowns: a comparison, match or membership with an unknown is false, and
arithmetic with one is unknown. Tests check the result against a reference
evaluator (tests/oracle.py) on random expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import Any

from rtorrentd.conditions.compile import ARITH, COMPARE, Flag, arith_or_unknown


class Cost(IntEnum):
    """What a Select costs per candidate, roughly, so `and` can run cheap parts first."""

    SCAN = 0  # a field against a constant
    SEARCH = 1  # a regex or set test on a field
    COMPUTE = 2  # anything computed


Columns = Mapping[str, Sequence[Any]]
Candidates = Sequence[int]
Select = Callable[[Columns, Candidates], list[int]]
Gather = Callable[[Columns, Candidates], list[Any]]
_Scan = Callable[[Sequence[Any], Candidates, Any], list[int]]

# --- fields --------------------------------------------------------------------

# One comprehension per operator: calling operator.ge per torrent would double the cost.
_FIELD_CONST: Mapping[str, _Scan] = {
    "==": lambda col, idx, c: [i for i in idx if col[i] == c],
    "!=": lambda col, idx, c: [i for i in idx if (v := col[i]) is not None and v != c],
    "<": lambda col, idx, c: [i for i in idx if (v := col[i]) is not None and v < c],
    "<=": lambda col, idx, c: [i for i in idx if (v := col[i]) is not None and v <= c],
    ">": lambda col, idx, c: [i for i in idx if (v := col[i]) is not None and v > c],
    ">=": lambda col, idx, c: [i for i in idx if (v := col[i]) is not None and v >= c],
}


def field_const(op: str, name: str, const: object) -> Select:
    """`field op constant`; the constant is never None, so an unknown never holds."""
    scan = _FIELD_CONST[op]

    def select(columns: Columns, idx: Candidates) -> list[int]:
        column = columns.get(name)
        return [] if column is None else scan(column, idx, const)

    return select


def flag(wanted: Flag) -> Select:
    """`complete` holds only when known true; `not complete` whenever not known true."""
    name, true = wanted

    def select(columns: Columns, idx: Candidates) -> list[int]:
        column = columns.get(name)
        if column is None:
            return [] if true else list(idx)
        if true:
            return [i for i in idx if column[i] is True]
        return [i for i in idx if column[i] is not True]

    return select


def field_holds(name: str, predicate: Callable[[Any], bool]) -> Select:
    """`predicate(field)` where known: `~`, `!~` and `in` on text and lists of text.

    The predicate runs once per distinct value, not per torrent: labels, tracker
    lists and messages repeat across a library, and a regex search costs far more
    than a set lookup. Column values must be hashable, as a `Torrent`'s are.
    """

    def select(columns: Columns, idx: Candidates) -> list[int]:
        column = columns.get(name)
        if column is None:
            return []
        distinct = {column[i] for i in idx}
        distinct.discard(None)
        good = {v for v in distinct if predicate(v)}
        return [i for i in idx if column[i] in good] if good else []

    return select


def field_in(name: str, items: frozenset[object], negated: bool) -> Select:
    """`label in [...]` / `not in`: a set lookup; an unknown is in neither."""

    def select(columns: Columns, idx: Candidates) -> list[int]:
        column = columns.get(name)
        if column is None:
            return []
        if negated:
            return [i for i in idx if (v := column[i]) is not None and v not in items]
        return [i for i in idx if column[i] in items]

    return select


def field(name: str) -> Gather:
    """The values of one field."""

    def gather(columns: Columns, idx: Candidates) -> list[Any]:
        column = columns.get(name)
        return [None] * len(idx) if column is None else [column[i] for i in idx]

    return gather


def constant(value: object) -> Gather:
    """A value known at parse time, once per candidate."""
    return lambda columns, idx: [value] * len(idx)


# --- computed values -----------------------------------------------------------------


def compare_values(op: str, left: Gather, right: Gather) -> Select:
    """`left op right` for any two values; false when either is unknown."""
    compare = COMPARE[op]

    def select(columns: Columns, idx: Candidates) -> list[int]:
        pairs = zip(idx, left(columns, idx), right(columns, idx), strict=True)
        return [i for i, a, b in pairs if a is not None and b is not None and compare(a, b)]

    return select


def contains(op: str, items: Gather, item: Gather) -> Select:
    """`==` / `!=` of a list of text and a text: any element equal / none equal."""
    wanted = op == "=="

    def select(columns: Columns, idx: Candidates) -> list[int]:
        triples = zip(idx, items(columns, idx), item(columns, idx), strict=True)
        return [i for i, a, b in triples if a is not None and b is not None and (b in a) == wanted]

    return select


def combine(op: str, left: Gather, right: Gather) -> Gather:
    """Arithmetic or min/max; unknown when either side is, or when Python cannot
    compute it (`arith_or_unknown`)."""
    apply = ARITH[op]

    def gather(columns: Columns, idx: Candidates) -> list[Any]:
        pairs = list(zip(left(columns, idx), right(columns, idx), strict=True))
        try:
            return [None if a is None or b is None else apply(a, b) for a, b in pairs]
        except ArithmeticError:
            # Rare (a huge constant), so the common case pays no call per candidate.
            return [
                None if a is None or b is None else arith_or_unknown(op, a, b) for a, b in pairs
            ]

    return gather


def negate(value: Gather) -> Gather:
    """Unary minus; unknown stays unknown."""
    return lambda columns, idx: [None if v is None else -v for v in value(columns, idx)]


def holds(value: Gather, predicate: Callable[[Any], bool]) -> Select:
    """`predicate(value)` where the value is known."""

    def select(columns: Columns, idx: Candidates) -> list[int]:
        pairs = zip(idx, value(columns, idx), strict=True)
        return [i for i, v in pairs if v is not None and predicate(v)]

    return select


# --- conditions as values, and back ------------------------------------------------


def truthy(value: Gather) -> Select:
    """A boolean value that is not a field (`true`, a comparison) used as a condition."""

    def select(columns: Columns, idx: Candidates) -> list[int]:
        return [i for i, v in zip(idx, value(columns, idx), strict=True) if v]

    return select


def as_values(select: Select) -> Gather:
    """A condition used as a value (`(ratio > 1) == true`): True or False per candidate."""

    def gather(columns: Columns, idx: Candidates) -> list[Any]:
        taken = set(select(columns, idx))
        return [i in taken for i in idx]

    return gather


# --- and, or, not --------------------------------------------------------------------


def all_of(selects: tuple[Select, ...]) -> Select:
    """`a and b and ...`: each part sees only the candidates the parts before kept."""
    first, *rest = selects

    def select(columns: Columns, idx: Candidates) -> list[int]:
        hits = first(columns, idx)
        for part in rest:
            if not hits:
                break
            hits = part(columns, hits)
        return hits

    return select


def any_of(selects: tuple[Select, ...]) -> Select:
    """`a or b or ...`: each part sees only the candidates no part before took."""
    first, *rest = selects

    def select(columns: Columns, idx: Candidates) -> list[int]:
        hits = first(columns, idx)
        for part in rest:
            if len(hits) == len(idx):
                break
            taken = set(hits)
            more = part(columns, [i for i in idx if i not in taken])
            if more:
                taken.update(more)
                hits = [i for i in idx if i in taken]  # back in candidate order
        return hits

    return select


def none_of(inner: Select) -> Select:
    """`not a`: the candidates `a` does not select."""

    def select(columns: Columns, idx: Candidates) -> list[int]:
        taken = set(inner(columns, idx))
        return [i for i in idx if i not in taken] if taken else list(idx)

    return select
