"""rtorrent's `d.multicall2` rows to `Torrent`s, a whole column at a time.

`layout()` turns the fields a configuration needs (`vocabulary.fields_for`) into
the commands to send, each once, and `torrents_from_rows()` converts the reply
with each field's `convert` (a faster column-wise form for the plain ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import cast
from urllib.parse import unquote

from rtorrentd.batch import frozen_batch
from rtorrentd.torrent import Torrent, holding
from rtorrentd.vocabulary import (
    Convert,
    Field,
    custom_timestamp,
    finished,
    first_bool,
    first_int,
    first_str,
    label,
    latest_scrape,
    ratio,
    scrape_max,
    tags,
    to_int,
    to_str,
)


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read `d.multicall2` rows: the commands to send, and for each field
    the positions of its commands in a row and how to convert a whole column."""

    fields: tuple[Field, ...]
    commands: tuple[str, ...]
    positions: tuple[tuple[int, ...], ...]
    columns: tuple[ConvertColumn, ...] = ()
    kind: type[Torrent] = Torrent  # the Torrents made: holding these fields (`layout`)


# Converts the raw columns of one field's commands (one sequence per command,
# aligned with the rows) to the field's values, one per row.
ConvertColumn = Callable[[Sequence[Sequence[object]]], Sequence[object]]


def layout(fields: Sequence[Field]) -> Layout:
    """Deduplicate the commands of `fields` (several need `d.directory=`)."""
    commands: list[str] = []
    positions: list[tuple[int, ...]] = []
    for field in fields:
        slots = []
        for command in field.commands:
            if command not in commands:
                commands.append(command)
            slots.append(commands.index(command))
        positions.append(tuple(slots))
    columns = tuple(
        _shared_strs if field.name in SHARED_TEXTS else _column_converter(field.convert)
        for field in fields
    )
    kind = holding(frozenset(field.name for field in fields))
    return Layout(tuple(fields), tuple(commands), tuple(positions), columns, kind)


def torrent_from_row(plan: Layout, row: Sequence[object]) -> Torrent:
    """Build a `Torrent` from one row; raises TypeError/ValueError on a malformed row."""
    return torrents_from_rows(plan, [row])[0]


def torrents_from_rows(plan: Layout, rows: Sequence[object]) -> tuple[Torrent, ...]:
    """Build a `Torrent` from each row of a `d.multicall2` reply, in order.

    Raises TypeError/ValueError if any row is malformed. Why column by column: a
    snapshot has thousands of rows of the same shape, so each field is checked and
    converted with one C-level pass over its column (`map`, `set(map(type, ...))`)
    instead of a few Python calls per row, and the Torrents are filled in the
    same way (see `rtorrentd.batch`).
    """
    if not rows:
        return ()
    return torrents_from_columns(plan, _transpose(rows, len(plan.commands)))


def torrents_from_columns(plan: Layout, columns: Sequence[Sequence[object]]) -> tuple[Torrent, ...]:
    """`torrents_from_rows` for rows given as columns (one sequence per command,
    all as long): what the decoders give a chunk at a time. Raises ValueError if
    there are not as many columns as commands."""
    if len(columns) != len(plan.commands):
        raise ValueError(f"expected {len(plan.commands)} values, got {len(columns)}")
    count = len(columns[0]) if columns else 0
    if not count:
        return ()
    values = {
        field.name: convert([columns[i] for i in slots])
        for field, slots, convert in zip(plan.fields, plan.positions, plan.columns, strict=True)
    }
    return tuple(frozen_batch(plan.kind, count, values))


def _transpose(rows: Sequence[object], width: int) -> list[Sequence[object]]:
    """Rows (lists or tuples of `width` values) to `width` columns."""
    if not set(map(type, rows)) <= {list, tuple}:
        bad = next(r for r in rows if not isinstance(r, list | tuple))
        raise TypeError(f"expected a row of values, got {bad!r:.80}")
    checked = cast(Sequence[Sequence[object]], rows)
    lengths = set(map(len, checked))
    if lengths != {width}:
        raise ValueError(f"expected {width} values, got {max(lengths - {width})}")
    return list(zip(*checked, strict=True))


# --- column converters: the field table's converters, one pass per column ---------


def _column_converter(convert: Convert) -> ConvertColumn:
    """The column-wise form of a field's `convert`: a fast one for the plain
    single-command converters, else `convert` row by row."""
    fast = _FAST_COLUMNS.get(convert)
    if fast is not None:
        return fast
    return lambda raw: list(map(convert, zip(*raw, strict=True)))


def _ints(column: Sequence[object]) -> Sequence[int]:
    """`column` itself when every value is an int (not a bool), else `to_int`'s error."""
    if set(map(type, column)) <= {int}:
        return column  # type: ignore[return-value]
    return list(map(to_int, column))  # raises at the first bad value


def _strs(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    column = raw[0]
    return column if set(map(type, column)) <= {str} else list(map(to_str, column))


SHARED_TEXTS = frozenset({"directory", "throttle", "message"})
"""Fields whose text most torrents share with many others (a few download
directories, throttle groups, tracker messages): one str per distinct text."""


def _shared_strs(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`_strs`, each distinct text one object: decoders make a str per row, and
    100,000 torrents in four directories would hold 100,000 copies of them."""
    column = cast(Sequence[str], _strs(raw))
    one = {text: text for text in set(column)}
    return list(map(one.__getitem__, column))


def _ints_column(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    return _ints(raw[0])


def _bools(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    return list(map(bool, _ints(raw[0])))  # bool(n) is n != 0


SHARED_RATIOS = 1 << 14
"""Ratios below 16.384 (rtorrent counts them in thousandths) come as one shared
float per value (`_ratio_table`): 100,000 torrents hold at most 16,384 distinct
ones, instead of a 24-byte float each (2.3 MiB at 100,000)."""


@cache
def _ratio_table() -> tuple[float, ...]:
    return tuple(n / 1000 for n in range(SHARED_RATIOS))


def _ratios(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    table = _ratio_table()
    return [table[n] if 0 <= n < SHARED_RATIOS else n / 1000 for n in _ints(raw[0])]


def _labels(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`label` for a whole column, each distinct text decoded once: a library has a
    few labels over thousands of torrents (50,000 rows of 4 labels, one encoded:
    5 ms, against 55 ms decoding row by row)."""
    column = cast(Sequence[str], _strs(raw))
    decoded = {text: unquote(text) for text in set(column)}
    return list(map(decoded.__getitem__, column))


def _tags(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`tags` for a whole column, each distinct text split and decoded once (the
    tuples are immutable, so torrents may share one)."""
    column = cast(Sequence[str], _strs(raw))
    split = {text: tags((text,)) for text in set(column)}
    return list(map(split.__getitem__, column))


def _finished(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`finished` for a whole column: the text of `d.custom=seedingtime` is read
    only where rtorrent's own timestamp is 0."""
    stamps, customs = _ints(raw[0]), raw[1]
    return [n if n > 0 else custom_timestamp(c) for n, c in zip(stamps, customs, strict=True)]


def _scrape_maxes(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`scrape_max` for a whole column: checked in bulk, then one expression per
    torrent; any odd shape goes through `scrape_max` for its exact error."""
    column = raw[0]
    if not _all_rows_of_ints(column):
        return list(map(scrape_max, zip(column, strict=True)))
    trackers = cast(Sequence[Sequence[tuple[int, int]]], column)
    if set(map(len, trackers)) == {1}:  # the usual library: one tracker each
        return [n if when > 0 else None for n, when in map(itemgetter(0), trackers)]
    return [max([n for n, when in rows if when > 0], default=None) for rows in trackers]


def _latest_scrapes(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`latest_scrape` for a whole column, checked in bulk like `_scrape_maxes`."""
    column = raw[0]
    if not _all_rows_of_ints(column, width=1):
        return list(map(latest_scrape, zip(column, strict=True)))
    trackers = cast(Sequence[Sequence[tuple[int]]], column)
    return [max([n for (n,) in rows if n > 0], default=None) for rows in trackers]


def _all_rows_of_ints(column: Sequence[object], width: int = 2) -> bool:
    """Whether every value is a list of tracker rows of `width` ints (bools excluded)."""
    if not set(map(type, column)) <= {list}:
        return False
    rows = list(chain.from_iterable(cast(Sequence[list[object]], column)))
    if not set(map(type, rows)) <= {list}:
        return False
    pairs = cast(list[list[object]], rows)
    return set(map(len, pairs)) <= {width} and set(map(type, chain.from_iterable(pairs))) <= {int}


_FAST_COLUMNS: Mapping[Convert, ConvertColumn] = {
    scrape_max: _scrape_maxes,
    latest_scrape: _latest_scrapes,
    first_str: _strs,
    first_int: _ints_column,
    first_bool: _bools,
    ratio: _ratios,
    finished: _finished,
    label: _labels,
    tags: _tags,
}
