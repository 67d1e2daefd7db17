"""Row-by-row forms the tests judge production against; production is column-wise.

- `by_rows` / `condition`: a condition built by hand from a test on one torrent's
  facts (a mapping, None or a missing key = unknown), run one facts dict per
  candidate: for engine tests that must not depend on the parser.
- `holds`: whether a parsed condition holds for one torrent's facts.
- `build_facts`: what a condition reads for each torrent, as one dict each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rtorrentd.conditions.parse import Columns, Condition, Select
from rtorrentd.engine.facts import Files
from rtorrentd.engine.memory import WEEK, Memory
from rtorrentd.engine.plan import build_columns
from rtorrentd.torrent import Torrent

Facts = Mapping[str, Any]
Test = Callable[[Facts], bool]


def by_rows(test: Test) -> Select:
    """`test` as a column-wise `Select`, one facts dict per candidate."""

    def select(columns: Columns, idx: Sequence[int]) -> list[int]:
        named = tuple(columns.items())
        return [i for i in idx if test({name: column[i] for name, column in named})]

    return select


def condition(text: str, names: set[str] | frozenset[str], test: Test) -> Condition:
    """A condition built by hand: `text` for show, reading `names`, judged by `test`."""
    return Condition(text, frozenset(names), by_rows(test))


def holds(when: Condition, facts: Facts) -> bool:
    """Whether `when` holds for one torrent whose values are `facts`."""
    columns = {name: [value] for name, value in facts.items()}
    return when.select(columns, [0]) == [0]


def build_facts(
    torrents: Sequence[Torrent],
    names: frozenset[str],
    now: float,
    memory: Memory,
    *,
    window: float = WEEK,
    files: Files | None = None,
) -> list[dict[str, object]]:
    """One facts dict per torrent holding exactly `names` (None = unknown)."""
    columns = build_columns(torrents, names, now, memory, window=window, files=files)
    named = tuple(columns.items())
    return [{name: column[i] for name, column in named} for i in range(len(torrents))]
