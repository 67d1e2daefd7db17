"""Where things are in a configuration file, and messages that say so.

tomllib reports positions only for syntax errors; `LineIndex` finds the lines of
tables and keys so that every other message can name one too.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtorrentd.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_HEADER_RE = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY_RE = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=\s*(.*)")
_TOML_POSITION_RE = re.compile(r" \(at (?:line (\d+), column (\d+)|end of document)\)$")

Place = tuple[str, int]  # a table name and which [[name]] it is (0 for [name])


class LineIndex:
    """Line numbers of table headers and keys; tomllib gives none.

    Strategy: scan the text line by line, tracking the current table, and skip
    the inside of multi-line strings. Keys written some other way (dotted keys,
    inline tables) are not found, and messages fall back to the table's line.
    """

    def __init__(self, text: str) -> None:
        self.tables: dict[Place, int] = {}
        self.keys: dict[tuple[str, int, str], int] = {}
        self.next_line: set[tuple[str, int, str]] = set()  # """ then a newline
        self.counts: Counter[str] = Counter()
        self.place: Place = ("", 0)
        closing = ""
        for number, line in enumerate(text.split("\n"), 1):
            if not closing:
                closing = self.read(number, line)
            elif closing in line:
                closing = ""

    def read(self, number: int, line: str) -> str:
        """Note a header or a key; return the delimiter of a string left open."""
        if header := _HEADER_RE.match(line):
            name = header[2]
            self.counts[name] += 1
            self.place = (name, self.counts[name] - 1 if header[1] == "[[" else 0)
            self.tables[self.place] = number
        elif key := _KEY_RE.match(line):
            where = (*self.place, key[1])
            self.keys.setdefault(where, number)
            for quotes in ('"""', "'''"):
                if key[2].startswith(quotes) and key[2].count(quotes) == 1:
                    if key[2].strip() == quotes:
                        self.next_line.add(where)
                    return quotes
        return ""

    def value_line(self, place: Place, key: str, row: int) -> int | None:
        """The line of row `row` of the (multi-line) string value of `key`."""
        found = self.keys.get((*place, key))
        if found is None:
            return self.tables.get(place)
        return found + row + ((*place, key) in self.next_line)

    def line(self, place: Place, key: str | None = None) -> int | None:
        """The line of `key` in the table at `place`, else of the table's header."""
        found = self.keys.get((*place, key)) if key else None
        return found or self.tables.get(place)

    def table_at(self, line: int) -> Place:
        """The table that line `line` is in (("", 0) before the first header)."""
        headers = [(number, place) for place, number in self.tables.items() if number <= line]
        return max(headers, key=lambda header: header[0])[1] if headers else ("", 0)


def load_toml(text: str, source: str) -> dict[str, Any]:
    """tomllib's result, or a ConfigError naming the line and showing the column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(text, source, exc) from None
    except ValueError:
        # int() refuses thousands of digits (sys.get_int_max_str_digits).
        raise _long_number_error(text, source) from None
    except RecursionError:
        hint = "write arrays and inline tables at most a few levels deep"
        raise ConfigError(f"{source}: invalid TOML: nested too deeply\n  {hint}") from None


def _syntax_error(text: str, source: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    position = _TOML_POSITION_RE.search(message)
    if position is None:
        return ConfigError(f"{source}: invalid TOML: {message}")
    reason = message[: position.start()]
    if position[1] is None:
        end = text.count("\n") + 1
        return ConfigError(f"{source}:{end}: invalid TOML: {reason} at the end of the file")
    line, column = int(position[1]), int(position[2]) - 1
    shown = excerpt(text.split("\n")[line - 1], column)
    return ConfigError(f"{source}:{line}: invalid TOML: {reason}{shown}")


_LONG_NUMBER_RE = re.compile(r"(?<![\w.])[+-]?\d[\d_]{20,}")


def _long_number_error(text: str, source: str) -> ConfigError:
    """Where tomllib met an integer too long to convert: the first value that is one."""
    lines = LineIndex(text)
    hint = "write a value in the setting's range: none takes a number of more than 20 digits"
    for number, line in enumerate(text.split("\n"), 1):
        key = _KEY_RE.match(line)
        found = _LONG_NUMBER_RE.match(key[2]) if key else None
        if key and found:
            place = lines.table_at(number)
            label = f"[{place[0]}]" if place[1] == 0 and place[0] not in ("rule", "space") else ""
            label = label or (f"{place[0]} #{place[1] + 1}" if place[0] else "")
            digits = sum(c.isdigit() for c in found[0])
            shown = found[0] if len(found[0]) <= 40 else found[0][:40] + "…"
            where = Where(source, lines, place, label)
            problem = f"{key[1]} = {shown} is a number of {digits} digits"
            return where.error_at(number, f"{problem}\n  {hint}")
    return ConfigError(f"{source}: invalid TOML: a number too long to read\n  {hint}")


_EXCERPT = 80  # characters of a line shown around a column


def excerpt(line: str, column: int) -> str:
    """`line` indented, with a caret under `column` (0-based); a long line is cut
    to the part around the column, with … where cut."""
    if len(line) > _EXCERPT:
        start = max(0, min(column - _EXCERPT // 2, len(line) - _EXCERPT))
        cut = line[start : start + _EXCERPT]
        line = ("…" if start else "") + cut + ("…" if start + _EXCERPT < len(line) else "")
        column = column - start + (1 if start else 0)
    return f"\n    {line}\n    {' ' * column}^"


@dataclass(frozen=True, slots=True)
class Where:
    """A table of the file, for messages: `label` is how a person knows it."""

    source: str
    lines: LineIndex
    place: Place
    label: str

    def error(self, problem: str, hint: str = "", key: str | None = None) -> ConfigError:
        """A ConfigError for `problem` at `key` (else the table's header)."""
        return self.error_at(
            self.lines.line(self.place, key), problem + (f"\n  {hint}" * bool(hint))
        )

    def error_at(self, line: int | None, text: str) -> ConfigError:
        where = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{where}: {self.label}: {text}" if self.label else f"{where}: {text}")


def close_match(word: str, choices: Mapping[str, str]) -> str:
    """Say "did you mean X? " when a choice is close to `word` (X: how it is shown)."""
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {choices[found[0]]}? " if found else ""
