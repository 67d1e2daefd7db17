"""The words of the condition language: numbers with units, strings, names, operators.

Durations and sizes are shared with the configuration (`parse_duration`,
`parse_size`); each literal carries its `Type` so the parser can check units.
"""

from __future__ import annotations

import math
import re
from enum import Enum, auto
from typing import NamedTuple

from rtorrentd.errors import ExprError

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE_UNITS = {
    "B": 1,
    **{f"{p}B": 1000 ** (i + 1) for i, p in enumerate("KMGT")},
    **{f"{p}iB": 1024 ** (i + 1) for i, p in enumerate("KMGT")},
}
_NUMBER = r"\d+(?:\.\d+)?"
_PLAIN_RE = re.compile(_NUMBER)
_DURATION_RE = re.compile(rf"(?:{_NUMBER}[smhdw])+")
_DURATION_PART = re.compile(rf"({_NUMBER})([smhdw])")
_SIZE_RE = re.compile(rf"({_NUMBER})([KMGT]i?B|B)")
_RATE_RE = re.compile(rf"({_NUMBER})([KMGT]i?B|B)?/s")  # 100KiB/s; 500/s is bytes
QUANTITY_HINT = (
    "durations use s m h d w (like 30s or 1d12h); sizes use B KB MB GB TB (x1000) "
    "or KiB MiB GiB TiB (x1024), like 1.5GiB"
)


# The largest value a literal may have, in seconds or bytes for durations and sizes.
MAX_QUANTITY = 10**18
RANGE_HINT = (
    f"write a number of at most {MAX_QUANTITY} (10^18); durations count seconds, sizes bytes"
)
# A number with more digits before the point can only be out of range, so it is
# never converted: int() refuses thousands of digits, float() overflows past 1e308.
_MAX_DIGITS = 24


def _number(text: str) -> int | float:
    """The value of a plain number; infinity when it has too many digits to be in range."""
    whole = text.partition(".")[0].lstrip("0")
    if len(whole) > _MAX_DIGITS:
        return math.inf
    return float(text) if "." in text else int(whole or "0")


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _rounded(value: float) -> int | float:
    return round(value) if math.isfinite(value) else value


class Type(Enum):
    """The static type of a value in a condition."""

    BOOL = auto()
    STRING = auto()
    STRINGS = auto()
    NUMBER = auto()  # a plain number field or result, e.g. ratio
    SIZE = auto()  # bytes
    RATE = auto()  # bytes per second
    DURATION = auto()  # seconds
    TIMESTAMP = auto()  # unix seconds
    PLAIN = auto()  # a unit-less literal: it goes with any numeric type


def parse_quantity(text: str) -> tuple[int | float, Type] | None:
    """`30`, `1d12h`, `1.5GiB`, `100KiB/s` to (value in seconds, bytes or bytes per
    second, type); None if invalid.

    The value is infinite when a number has too many digits to compute it: it is
    then out of range (`MAX_QUANTITY`) for any caller.
    """
    if _PLAIN_RE.fullmatch(text):
        return _number(text), Type.PLAIN
    if _DURATION_RE.fullmatch(text):
        parts = _DURATION_PART.findall(text)
        return _whole(sum(_number(n) * _DURATION_UNITS[u] for n, u in parts)), Type.DURATION
    if match := _SIZE_RE.fullmatch(text):
        return _rounded(_number(match[1]) * _SIZE_UNITS[match[2]]), Type.SIZE
    if match := _RATE_RE.fullmatch(text):
        return _rounded(_number(match[1]) * _SIZE_UNITS[match[2] or "B"]), Type.RATE
    return None


def parse_duration(text: str) -> int | float:
    """`"30s"`, `"1d12h"` or `"90"` to seconds; raises ValueError otherwise."""
    found = parse_quantity(text.strip())
    if found is None or found[1] not in (Type.PLAIN, Type.DURATION):
        raise ValueError(f"not a duration: {text!r}")
    return found[0]


def parse_size(text: str) -> int | float:
    """`"50GiB"`, `"500MB"` or `"1024"` to bytes (infinite when far too large);
    raises ValueError otherwise."""
    found = parse_quantity(text.strip())
    if found is None or found[1] not in (Type.PLAIN, Type.SIZE):
        raise ValueError(f"not a size: {text!r}")
    return _rounded(found[0])


# --- tokens --------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""(?P<space>\s+)
    | (?P<number>\d[\w.]*(?:/s(?!\w))?)
    | (?P<name>[A-Za-z_]\w*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|!~|&&|\|\||<>|[-+*/<>~()\[\],=!&|])""",
    re.VERBOSE | re.ASCII | re.DOTALL,
)
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
_MISTAKES = {"=": "==", "<>": "!=", "&&": "and", "&": "and", "||": "or", "|": "or", "!": "not"}
_ESCAPE_RE = re.compile(r"\\([\\'\"])")


class TokenKind(Enum):
    """What sort of word a token is; keywords are operators."""

    NUMBER = auto()
    NAME = auto()
    STRING = auto()
    OP = auto()
    END = auto()


class Token(NamedTuple):
    """One word of a condition; `value` is the literal's (value, Type) or unescaped text."""

    kind: TokenKind
    text: str
    start: int
    value: object = None

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def shown(self) -> str:
        return "the end" if self.kind is TokenKind.END else f"`{self.text}`"


def clip(text: str, longest: int = 20) -> str:
    """`text` cut to `longest` characters for a message, with … when cut."""
    return text if len(text) <= longest else text[:longest] + "…"


def error(problem: str, column: int, hint: str = "") -> ExprError:
    return ExprError(f"{problem}\n{hint}" if hint else problem, column)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise _bad_character(text, position)
        kind, lexeme = match.lastgroup or "", match.group()
        if kind != "space":
            tokens.append(_token(kind, lexeme, position))
        position = match.end()
    tokens.append(Token(TokenKind.END, "", len(text)))
    return tokens


def _bad_character(text: str, position: int) -> ExprError:
    if text[position] in "'\"":
        hint = 'end it with the same quote; write \\" for a quote inside'
        return error("this string is not closed", position, hint)
    return error(f"unexpected character `{text[position]}`", position)


def _token(kind: str, lexeme: str, start: int) -> Token:
    if kind == "op" and lexeme in _MISTAKES:
        raise error(f"`{clip(lexeme)}` is not an operator", start, f"write `{_MISTAKES[lexeme]}`")
    if kind == "number":
        quantity = parse_quantity(lexeme)
        if quantity is None:
            raise error(f"`{clip(lexeme)}` is not a number, duration or size", start, QUANTITY_HINT)
        if quantity[0] > MAX_QUANTITY:
            raise error(f"`{clip(lexeme)}` is out of range", start, RANGE_HINT)
        return Token(TokenKind.NUMBER, lexeme, start, quantity)
    if kind == "string":
        return Token(TokenKind.STRING, lexeme, start, _ESCAPE_RE.sub(r"\1", lexeme[1:-1]))
    if kind == "op" or lexeme in KEYWORDS:
        return Token(TokenKind.OP, lexeme, start)
    return Token(TokenKind.NAME, lexeme, start)
