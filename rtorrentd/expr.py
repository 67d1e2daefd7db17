"""The condition language. (Being written: see the helper's work.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rtorrentd.torrent import Kind

Facts = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled `when` condition.

    `names` are the field and derived names it reads (the engine fetches and
    computes only those); `test(facts)` evaluates it against one torrent's facts,
    a mapping from name to value where None (or a missing key) means unknown.
    """

    text: str
    names: frozenset[str]
    test: Callable[[Facts], bool]


def parse_condition(text: str, names: Mapping[str, Kind]) -> Condition:
    """Parse and compile `text`; raises `ExprError` with a 0-based column."""
    raise NotImplementedError
