"""The condition language: `when` text to a compiled predicate.

Grammar (EBNF; keywords are lower case; whitespace separates tokens)::

    condition   = disjunction ;
    disjunction = conjunction { "or" conjunction } ;
    conjunction = negation { "and" negation } ;
    negation    = "not" negation | comparison ;
    comparison  = sum [ compare sum
                      | ( "~" | "!~" ) string
                      | [ "not" ] "in" ( list | sum ) ] ;  (* sum: a list of text *)
    compare     = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
    sum         = product { ( "+" | "-" ) product } ;
    product     = unary { ( "*" | "/" ) unary } ;
    unary       = "-" unary | atom ;
    atom        = quantity | string | "true" | "false" | name
                | ( "min" | "max" ) "(" sum "," sum ")"
                | "(" condition ")" ;
    list        = "[" [ sum { "," sum } [ "," ] ] "]" ;     (* constant items *)
    quantity    = number [ size_unit ] [ "/s" ] | duration ;   (* "/s": a rate *)
    duration    = number duration_unit { number duration_unit } ;   (* 1d12h *)
    number      = digit { digit } [ "." digit { digit } ] ;
    duration_unit = "s" | "m" | "h" | "d" | "w" ;              (* value in seconds *)
    size_unit   = "B" | "KB" | "MB" | "GB" | "TB"               (* x 1000, bytes *)
                | "KiB" | "MiB" | "GiB" | "TiB" ;               (* x 1024 *)
    string      = "'" { char } "'" | '"' { char } '"' ;
    name        = letter { letter | digit | "_" } ;

Meaning:

- Unknown values. A name whose value is None or missing from the facts is
  unknown. Arithmetic with an unknown is unknown, and so is a division by zero
  or a result too large for a float (`ratio + 10**400`), and
  any comparison, match or `in` with an unknown is false. So `seeders > 3` and
  `seeders <= 3` are both false without a scrape, while `not (seeders > 3)` is
  true: write `seeders <= 3` to mean "known and at most 3". A bare boolean
  field holds only when it is known to be true.
- Types are checked at parse time, with the kinds of `rtorrentd.vocabulary`.
  Numbers (`ratio`, `peers`), sizes (`size`, `uploaded`), rates (`up_rate`,
  bytes per second), durations (`age`, `seeding_time`) and timestamps
  (`added`, `finished`, unix seconds) do not mix, except that a plain number
  goes with any of them (seconds for durations and timestamps, bytes for
  sizes, bytes per second for rates), and a rate compares with a size literal
  read per second (`up_rate > 100KiB` is `up_rate > 100KiB/s`). A timestamp
  minus a timestamp is a duration; a size divided by a size, or a duration by
  a duration, is a plain number; a size divided by a duration is a rate, and a
  rate times a duration a size.
- Bounds: a literal is at most 10^18 (seconds, bytes); at most 32 levels of
  ( ), `not` and `-` nest, and at most 100 operations inside one another, so
  neither parsing nor evaluation comes near Python's recursion limit. A
  condition that parses never raises when evaluated.
- Text: `==`, `!=`, `in` compare exactly; `~` is `re.search`, case-insensitive,
  and `!~` its negation. Against a list of text (`trackers`), `==`, `~` and
  `in` hold when any element does; `!=`, `!~` and `not in` when none does.
  Text `in` such a list is the same test: `"x" in views` is `views == "x"`.
- In strings a backslash escapes only a quote or a backslash; any other
  backslash is kept, so regular expressions read naturally: `name ~ "\\d{4}"`.

The text is parsed once into a tree of closures, `select`, that judges a whole
snapshot held as columns (see `conditions.select`), which is how the engine
evaluates rules. A field compared with a constant is a single closure, the
common case in rules.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from rtorrentd.conditions import compile as build
from rtorrentd.conditions import select as by_column
from rtorrentd.conditions.lex import (
    KEYWORDS,
    RANGE_HINT,
    Token,
    TokenKind,
    Type,
    clip,
    error,
    parse_duration,
    parse_size,
    tokenize,
)
from rtorrentd.conditions.select import Columns, Cost, Gather, Select
from rtorrentd.errors import ExprError
from rtorrentd.vocabulary import Kind

__all__ = [
    "Columns",
    "Condition",
    "Select",
    "parse_condition",
    "parse_duration",
    "parse_size",
]

_Join = Callable[[tuple[Select, ...]], Select]
_Forms = tuple[Select, Cost]  # a condition, and what it costs per candidate
_FUNCTIONS = ("min", "max")
# Bounds that keep parsing and evaluation well inside Python's recursion limit:
# each level of ( ), `not` or `-` is a dozen frames of the parser, and each
# operation nested in another a frame or two of every evaluation.
MAX_NESTING = 32
MAX_DEPTH = 100
NESTING_HINT = f"write at most {MAX_NESTING} levels of ( ), `not` and `-` inside each other"
LENGTH_HINT = f"a condition may chain at most {MAX_DEPTH} operations: split it across rules"
FIELDS_HINT = 'Fields are listed in README under "Condition fields".'


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled `when` condition.

    `names` are the field and derived names it reads (the engine fetches and
    computes only those).

    `select(columns, candidates)` evaluates it against many torrents at once:
    `columns` maps each name to a sequence of values index-aligned with the
    snapshot (None = unknown, a missing name unknown throughout), `candidates` are
    the indices in question; it returns those for which the condition holds, in
    candidate order.
    """

    text: str
    names: frozenset[str]
    select: Select


def parse_condition(text: str, names: Mapping[str, Kind]) -> Condition:
    """Parse and compile `text`; raises `ExprError` with a 0-based column.

    An error's message is one line saying what is wrong, then (after a newline)
    what to write instead.
    """
    parser = _Parser(text, names)
    select = parser.parse()
    return Condition(text, frozenset(parser.used), select)


@dataclass(frozen=True, slots=True)
class _Value:
    """A parsed sub-expression: its type, how to compute it (`gather`, and for a
    condition `select`), where it is."""

    type: Type
    gather: Gather
    start: int
    end: int
    field: str | None = None  # set when the value is one field, for specialisation
    const: tuple[object] | None = None  # (value,) when known at parse time
    flag: build.Flag | None = None  # set for `complete` and `not complete`
    select: Select | None = None  # set for conditions, except `true`/`false`
    cost: Cost = Cost.SCAN  # of `select`, per candidate: see `chain`
    depth: int = 0  # operations nested in one another, to evaluate it: see `deeper`


class _Parser:
    """Recursive descent, one method per grammar rule; each returns a typed `_Value`."""

    def __init__(self, text: str, names: Mapping[str, Kind]) -> None:
        self.text = text
        self.names = names
        self.tokens = tokenize(text)
        self.index = 0
        self.used: set[str] = set()
        self.nesting = 0  # ( ), `not` and `-` open around the current token

    def parse(self) -> Select:
        if self.peek().kind is TokenKind.END:
            raise error("the condition is empty", 0, "write one like `complete and ratio >= 2`")
        value = self.disjunction()
        token = self.peek()
        if token.kind is not TokenKind.END:
            hint = _keyword_hint(token.text) or "join conditions with `and` or `or`"
            raise error(
                f"expected `and`, `or` or the end, found {token.shown()}", token.start, hint
            )
        return self.as_select(value)

    # helpers

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def accept(self, *texts: str) -> Token | None:
        token = self.peek()
        return self.take() if token.kind is TokenKind.OP and token.text in texts else None

    def expect(self, text: str, why: str) -> Token:
        token = self.accept(text)
        if token is None:
            found = self.peek()
            raise error(f"expected `{text}` {why}, found {found.shown()}", found.start)
        return token

    def shown(self, value: _Value) -> str:
        return f"`{self.text[value.start : value.end]}`"

    def advice(self, value: _Value) -> str:
        sort, accepted = build.ADVICE[value.type]
        return f"{self.shown(value)} is {sort}; {accepted}"

    def as_select(self, value: _Value) -> Select:
        """`value` as a condition; it must be true or false."""
        if value.type is not Type.BOOL:
            sort, accepted = build.ADVICE[value.type]
            raise error(f"{self.shown(value)} is {sort}, not a condition", value.start, accepted)
        if value.flag:
            return by_column.flag(value.flag)
        return value.select or by_column.truthy(value.gather)

    def boolean(self, forms: _Forms, start: int, end: int, depth: int) -> _Value:
        select, cost = forms
        gather = by_column.as_values(select)
        return _Value(Type.BOOL, gather, start, end, select=select, cost=cost, depth=depth)

    def deeper(self, start: int, *parts: _Value) -> int:
        """The depth of an operation on `parts`, if not too deep to evaluate."""
        depth = 1 + max(part.depth for part in parts)
        if depth > MAX_DEPTH:
            raise error("this is too long to compute", start, LENGTH_HINT)
        return depth

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        """Inside the ( ), `not` or `-` at `token`, if not nested too deeply."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise error("the condition is nested too deeply", token.start, NESTING_HINT)
        yield
        self.nesting -= 1

    # grammar, loosest first

    def disjunction(self) -> _Value:
        return self.chain("or", self.conjunction, by_column.any_of)

    def conjunction(self) -> _Value:
        return self.chain("and", self.negation, by_column.all_of)

    def chain(self, word: str, operand: Callable[[], _Value], join: _Join) -> _Value:
        parts = [operand()]
        while self.accept(word):
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        selects = tuple(map(self.as_select, parts))  # checks each part's type, in order
        # Column-wise, cheap parts go first: `and` then runs a regex or arithmetic
        # only on the candidates the plain comparisons kept. Every part is pure and
        # total, so the order changes the cost, never the result (nor its order).
        order = sorted(range(len(parts)), key=lambda i: parts[i].cost)
        select = join(tuple(selects[i] for i in order))
        cost = max(part.cost for part in parts)
        depth = self.deeper(parts[0].start, *parts)
        return self.boolean((select, cost), parts[0].start, parts[-1].end, depth)

    def negation(self) -> _Value:
        token = self.accept("not")
        if token is None:
            return self.comparison()
        with self.nested(token):
            operand = self.negation()
        inner = self.as_select(operand)
        if operand.flag is not None:
            flag = (operand.flag[0], not operand.flag[1])
            gather = by_column.as_values(by_column.flag(flag))
            return _Value(Type.BOOL, gather, token.start, operand.end, flag=flag)
        forms = by_column.none_of(inner), operand.cost
        depth = self.deeper(token.start, operand)
        return self.boolean(forms, token.start, operand.end, depth)

    def comparison(self) -> _Value:
        left = self.sum()
        token = self.peek()
        if token.kind is not TokenKind.OP:
            return left
        if token.text in build.COMPARE:
            self.take()
            return self.compare(token, left, self.sum())
        if token.text in ("~", "!~"):
            return self.match(self.take(), left)
        if token.text == "in" or (token.text == "not" and self.peek(1).text == "in"):
            negated = self.accept("not") is not None
            self.take()  # `in`
            return self.member(left, negated)
        return left

    def compare(self, token: Token, left: _Value, right: _Value) -> _Value:
        op = token.text
        self.check_comparable(left, right)
        if op not in ("==", "!=") and left.type not in build.NUMERIC:
            problem = f"`{op}` compares numbers, not {build.ADVICE[left.type][0]}"
            raise error(problem, token.start, self.advice(left))
        start, end = left.start, right.end
        depth = self.deeper(start, left, right)
        if left.field is None and right.field is not None:
            op, left, right = build.MIRROR[op], right, left  # `2 <= ratio` as `ratio >= 2`
        return self.boolean(self.compare_test(op, left, right), start, end, depth)

    def compare_test(self, op: str, left: _Value, right: _Value) -> _Forms:
        if Type.STRINGS in (left.type, right.type):
            items, item = (left, right) if left.type is Type.STRINGS else (right, left)
            return by_column.contains(op, items.gather, item.gather), Cost.COMPUTE
        if left.field is not None and right.const is not None:
            return by_column.field_const(op, left.field, right.const[0]), Cost.SCAN
        return by_column.compare_values(op, left.gather, right.gather), Cost.COMPUTE

    def check_comparable(self, left: _Value, right: _Value) -> None:
        known = next((v.type for v in (right, left) if v.const is not None), None)
        if build.comparable(left.type, right.type, known):
            return
        swap = left.const is not None and right.const is None
        subject, culprit = (right, left) if swap else (left, right)
        problem = (
            f"cannot compare {self.shown(subject)} ({build.ADVICE[subject.type][0]}) "
            f"with {self.shown(culprit)} ({build.ADVICE[culprit.type][0]})"
        )
        raise error(problem, culprit.start, self.advice(subject))

    def match(self, token: Token, left: _Value) -> _Value:
        if left.type not in (Type.STRING, Type.STRINGS):
            problem = f"`{token.text}` matches text, but {self.shown(left)} is "
            sort, accepted = build.ADVICE[left.type]
            raise error(problem + sort, token.start, accepted)
        pattern = self.take()
        if pattern.kind is not TokenKind.STRING:
            hint = 'write it in quotes, like name ~ "x264|x265"'
            raise error(f"`{token.text}` needs a regular expression", pattern.start, hint)
        search = _compile_regex(pattern).search
        many, negated = left.type is Type.STRINGS, token.text == "!~"
        predicate = build.match_predicate(search, many, negated)
        depth = self.deeper(left.start, left)
        return self.boolean(self.holds(left, predicate), left.start, pattern.end, depth)

    def holds(self, value: _Value, predicate: Callable[[Any], bool]) -> _Forms:
        if value.field is not None:
            return by_column.field_holds(value.field, predicate), Cost.SEARCH
        return by_column.holds(value.gather, predicate), Cost.COMPUTE

    def member(self, left: _Value, negated: bool) -> _Value:
        bracket = self.peek()
        if left.type is Type.STRING and not (bracket.kind is TokenKind.OP and bracket.text == "["):
            return self.among(left, negated)
        self.expect("[", "to start a list")
        items: list[object] = []
        while (close := self.accept("]")) is None:
            items.append(self.list_item(left))
            if not self.accept(","):
                close = self.expect("]", "or `,` in the list")
                break
        many, members = left.type is Type.STRINGS, frozenset(items)
        depth = self.deeper(left.start, left)
        if left.field is not None and not many:
            select = by_column.field_in(left.field, members, negated)
            return self.boolean((select, Cost.SCAN), left.start, close.end, depth)
        predicate = build.member_predicate(members, many, negated)
        return self.boolean(self.holds(left, predicate), left.start, close.end, depth)

    def among(self, left: _Value, negated: bool) -> _Value:
        """`"sonarr_imported" in views`: text among a list of text's elements, the
        same test as `views == "sonarr_imported"` (`not in`: as `!=`)."""
        right = self.sum()
        if right.type is not Type.STRINGS:
            hint = 'write a list like ["tv", "movies"], or a list of text like views'
            problem = f"expected `[` to start a list, found {self.shown(right)}"
            raise error(problem, right.start, hint)
        depth = self.deeper(left.start, left, right)
        forms = self.compare_test("!=" if negated else "==", right, left)
        return self.boolean(forms, left.start, right.end, depth)

    def list_item(self, left: _Value) -> object:
        item = self.sum()
        if item.const is None:
            hint = 'write literal values, like ["movies", "tv"] or [0, 1]'
            raise error("list items must be known before any torrent is seen", item.start, hint)
        self.check_comparable(left, item)
        return item.const[0]

    def sum(self) -> _Value:
        return self.binary(("+", "-"), self.product)

    def product(self) -> _Value:
        return self.binary(("*", "/"), self.unary)

    def binary(self, ops: tuple[str, ...], operand: Callable[[], _Value]) -> _Value:
        left = operand()
        while token := self.accept(*ops):
            left = self.arithmetic(token.text, left, operand())
        return left

    def arithmetic(self, op: str, left: _Value, right: _Value) -> _Value:
        result = build.arith_type(op, left.type, right.type)
        if result is None:
            verb = build.VERBS.get(op, f"take the {op} of")
            left_sort, right_sort = build.ADVICE[left.type][0], build.ADVICE[right.type][0]
            problem = f"cannot {verb} {self.shown(left)} ({left_sort}) and {self.shown(right)}"
            raise error(f"{problem} ({right_sort})", right.start, build.ARITH_HINTS[op])
        if op == "/" and right.const is not None and not right.const[0]:
            raise error("division by zero", right.start)
        depth = self.deeper(left.start, left, right)
        if left.const is not None and right.const is not None:
            value = build.arith_or_unknown(op, left.const[0], right.const[0])
            if value is None:
                shown = clip(self.text[left.start : right.end], 40)
                raise error(f"`{shown}` is too large to compute", left.start, RANGE_HINT)
            return self.constant(value, result, left.start, right.end, depth)
        gather = by_column.combine(op, left.gather, right.gather)
        return _Value(result, gather, left.start, right.end, depth=depth)

    def unary(self) -> _Value:
        token = self.accept("-")
        if token is None:
            return self.atom()
        with self.nested(token):
            operand = self.unary()
        if operand.type not in build.NUMERIC - {Type.TIMESTAMP}:
            raise error(f"cannot negate {self.shown(operand)}", token.start, self.advice(operand))
        depth = self.deeper(token.start, operand)
        if operand.const is not None:
            value: Any = operand.const[0]
            return self.constant(-value, operand.type, token.start, operand.end, depth)
        gather = by_column.negate(operand.gather)
        return _Value(operand.type, gather, token.start, operand.end, depth=depth)

    def atom(self) -> _Value:
        token = self.take()
        if token.kind in (TokenKind.NUMBER, TokenKind.STRING) or token.text in ("true", "false"):
            return self.literal(token)
        if token.kind is TokenKind.NAME:
            return self.call(token) if self.peek().text == "(" else self.name(token)
        if token.text == "(":
            with self.nested(token):
                inner = self.disjunction()
            self.expect(")", "to close the `(`")
            return inner
        hint = "a value is a field like ratio, a number like 2 or 14d, a quoted string, or ( ... )"
        raise error(f"expected a value, found {token.shown()}", token.start, hint)

    def literal(self, token: Token) -> _Value:
        if token.kind is TokenKind.NUMBER:
            value, kind = cast(tuple[object, Type], token.value)
        elif token.kind is TokenKind.STRING:
            value, kind = token.value, Type.STRING
        else:
            value, kind = token.text == "true", Type.BOOL
        return self.constant(value, kind, token.start, token.end)

    def constant(self, value: object, kind: Type, start: int, end: int, depth: int = 0) -> _Value:
        gather = by_column.constant(value)
        return _Value(kind, gather, start, end, const=(value,), depth=depth)

    def name(self, token: Token) -> _Value:
        name = token.text
        kind = self.names.get(name)
        if kind is None:
            raise _unknown_name(name, self.names, token.start)
        self.used.add(name)
        value_type = build.KIND_TYPES[kind]
        flag = (name, True) if value_type is Type.BOOL else None
        gather = by_column.field(name)
        return _Value(value_type, gather, token.start, token.end, name, flag=flag)

    def call(self, token: Token) -> _Value:
        if token.text not in _FUNCTIONS:
            hint = "the functions are min(a, b) and max(a, b)"
            raise error(f"unknown function `{token.text}`", token.start, hint)
        with self.nested(self.take()):
            left = self.sum()
            self.expect(",", f"between the two values of {token.text}(a, b)")
            right = self.sum()
        self.expect(")", f"after the two values of {token.text}(a, b)")
        value = self.arithmetic(token.text, left, right)
        end = self.peek(-1).end
        gather, depth = value.gather, value.depth
        return _Value(value.type, gather, token.start, end, const=value.const, depth=depth)


def _unknown_name(name: str, names: Mapping[str, Kind], column: int) -> ExprError:
    hint = _keyword_hint(name)
    if not hint:
        close = [f"`{c}`" for c in difflib.get_close_matches(name, list(names), 3, 0.75)]
        guess = ", ".join(close[:-1]) + " or " + close[-1] if len(close) > 1 else "".join(close)
        hint = f"did you mean {guess}? {FIELDS_HINT}" if close else FIELDS_HINT
    return error(f"unknown field `{name}`", column, hint)


def _keyword_hint(word: str) -> str:
    lower = word.lower()
    return f"keywords are lower case: `{lower}`" if lower in KEYWORDS and lower != word else ""


def _compile_regex(token: Token) -> re.Pattern[str]:
    pattern = str(token.value)
    try:
        with warnings.catch_warnings():
            # re warns of patterns whose meaning a later Python will change.
            warnings.simplefilter("error")
            return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        # Point at the offending character when the text was copied unchanged.
        unchanged = token.text[1:-1] == pattern and exc.pos is not None
        column = token.start + 1 + (exc.pos or 0) if unchanged else token.start
        raise error(f"invalid regular expression: {exc.msg}", column) from None
    except OverflowError as exc:  # a repetition count past the engine's limit
        hint = "write a smaller count in { }, or + or * for any number"
        raise error(f"invalid regular expression: {exc}", token.start, hint) from None
    except RecursionError:
        hint = "write fewer groups inside each other"
        raise error("invalid regular expression: nested too deeply", token.start, hint) from None
    except Warning as warning:
        hint = r"inside [...], write \[ for a literal [ (and \- \& \~ \| likewise)"
        raise error(f"unclear regular expression: {warning}", token.start, hint) from None
