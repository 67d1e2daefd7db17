"""The frozen snapshot of one download, and the field table behind it.

Each `Field` says what a name in a rule means: which rtorrent commands it needs in
`d.multicall2` and how their raw values become a Python value. `snapshot()` asks
rtorrent only for the commands of the fields a configuration references (plus
`IDENTITY`), so a poll costs rtorrent as little as possible (RTORRENT.md:
≈ 540 bytes per torrent for 15 fields).

A `Torrent` attribute whose field was not fetched is `None`, and so is one that is
unknown for this torrent (no tracker scrape yet, no finish time): rules treat both
as "unknown", which makes a comparison false.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import chain
from operator import itemgetter
from typing import cast
from urllib.parse import urlsplit

from rtorrentd.batch import frozen_batch


class Kind(Enum):
    """What sort of value a field holds; the condition language type-checks with it."""

    NUMBER = "number"  # int or float; sizes in bytes
    TIMESTAMP = "timestamp"  # unix seconds (int)
    DURATION = "duration"  # seconds (derived fields only)
    STRING = "string"
    BOOL = "bool"
    STRINGS = "strings"  # tuple[str, ...]


Convert = Callable[[Sequence[object]], object]


@dataclass(frozen=True, slots=True)
class Field:
    """One name usable in rules: the rtorrent commands it reads and its conversion."""

    name: str
    kind: Kind
    commands: tuple[str, ...]
    convert: Convert
    doc: str


def _int(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"expected an integer, got {raw!r}")
    return raw


def _str(raw: object) -> str:
    if not isinstance(raw, str):
        raise TypeError(f"expected a string, got {raw!r}")
    return raw


def _first_int(values: Sequence[object]) -> int:
    return _int(values[0])


def _first_str(values: Sequence[object]) -> str:
    return _str(values[0])


def _first_bool(values: Sequence[object]) -> bool:
    return _int(values[0]) != 0


def _ratio(values: Sequence[object]) -> float:
    return _int(values[0]) / 1000


def _nonzero_timestamp(values: Sequence[object]) -> int | None:
    stamp = _int(values[0])
    return stamp if stamp > 0 else None


def _added(values: Sequence[object]) -> int | None:
    """`d.custom=addtime` (ruTorrent, cross-seed), else first start, else load date."""
    custom, started, loaded = values
    text = _str(custom).strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    for stamp in (_int(started), _int(loaded)):
        if stamp > 0:
            return stamp
    return None


def _path(values: Sequence[object]) -> str:
    """`d.base_path`, or its reconstruction when rtorrent has not opened the torrent.

    RTORRENT.md: `d.base_path` is "" for a torrent not opened since rtorrent
    started. Multi-file: the base path is the directory itself; single-file: the
    directory plus the file name (the executor checks the result against the disk).
    """
    base, directory, multi, name = values
    if _str(base):
        return _str(base)
    if _int(multi):
        return _str(directory)
    return posixpath.join(_str(directory), _str(name))


def _tracker_rows(raw: object) -> list[Sequence[object]]:
    if not isinstance(raw, list):
        raise TypeError(f"expected a list of trackers, got {raw!r}")
    rows: list[Sequence[object]] = []
    for row in raw:
        if not isinstance(row, list) or not row:
            raise TypeError(f"expected a tracker row, got {row!r}")
        rows.append(row)
    return rows


def _scrape_max(values: Sequence[object]) -> int | None:
    """The largest scrape figure over trackers that have reported; one swarm seen by
    several trackers is the same peers counted again, so the max, not the sum."""
    reported = [_int(row[0]) for row in _tracker_rows(values[0]) if _int(row[1]) > 0]
    return max(reported) if reported else None


def _latest_scrape(values: Sequence[object]) -> int | None:
    """When a tracker last reported a scrape figure (the newest over trackers); None
    before any did."""
    stamps = [stamp for row in _tracker_rows(values[0]) if (stamp := _int(row[0])) > 0]
    return max(stamps) if stamps else None


def _tracker_hosts(values: Sequence[object]) -> tuple[str, ...]:
    hosts: list[str] = []
    for row in _tracker_rows(values[0]):
        host = urlsplit(_str(row[0])).hostname or ""
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _field(name: str, kind: Kind, commands: str, convert: Convert, doc: str) -> Field:
    return Field(name, kind, tuple(commands.split()), convert, doc)


_N, _T, _S, _B, _L = Kind.NUMBER, Kind.TIMESTAMP, Kind.STRING, Kind.BOOL, Kind.STRINGS
_PATH_COMMANDS = "d.base_path= d.directory= d.is_multi_file= d.name="
_SCRAPE_SEEDS = "t.multicall=,t.scrape_complete=,t.scrape_time_last="
_SCRAPE_LEECH = "t.multicall=,t.scrape_incomplete=,t.scrape_time_last="
_SCRAPE_TIME = "t.multicall=,t.scrape_time_last="

FIELDS: Mapping[str, Field] = {
    f.name: f
    for f in (
        _field("hash", _S, "d.hash=", _first_str, "info-hash, 40 upper-case hex digits"),
        _field("name", _S, "d.name=", _first_str, "torrent name"),
        _field("label", _S, "d.custom1=", _first_str, "label (ruTorrent's d.custom1)"),
        _field("directory", _S, "d.directory=", _first_str, "download directory"),
        _field("path", _S, _PATH_COMMANDS, _path, "the torrent's data: file or directory"),
        _field("multi_file", _B, "d.is_multi_file=", _first_bool, "more than one file"),
        _field("complete", _B, "d.complete=", _first_bool, "all pieces downloaded"),
        _field("started", _B, "d.state=", _first_bool, "started (saved state)"),
        _field("active", _B, "d.is_active=", _first_bool, "running now"),
        _field("open", _B, "d.is_open=", _first_bool, "files open"),
        _field("private", _B, "d.is_private=", _first_bool, "private torrent"),
        _field("ratio", _N, "d.ratio=", _ratio, "uploaded / size (1.0 = one copy)"),
        _field("size", _N, "d.size_bytes=", _first_int, "total size, bytes"),
        _field("done", _N, "d.bytes_done=", _first_int, "bytes downloaded and checked"),
        _field("uploaded", _N, "d.up.total=", _first_int, "bytes uploaded, all time"),
        _field("downloaded", _N, "d.down.total=", _first_int, "bytes downloaded, all time"),
        _field("up_rate", _N, "d.up.rate=", _first_int, "upload rate, bytes/s"),
        _field("down_rate", _N, "d.down.rate=", _first_int, "download rate, bytes/s"),
        _field(
            "added",
            _T,
            "d.custom=addtime d.timestamp.started= d.load_date=",
            _added,
            "when added: d.custom addtime, else first start, else load date",
        ),
        _field("finished", _T, "d.timestamp.finished=", _nonzero_timestamp, "when completed"),
        _field("message", _S, "d.message=", _first_str, "last tracker error text"),
        _field("peers", _N, "d.peers_connected=", _first_int, "connected peers"),
        _field("seeders", _N, _SCRAPE_SEEDS, _scrape_max, "swarm seeders (scrape, max)"),
        _field("leechers", _N, _SCRAPE_LEECH, _scrape_max, "swarm leechers (scrape, max)"),
        _field("scraped", _T, _SCRAPE_TIME, _latest_scrape, "last scrape (newest tracker)"),
        _field("trackers", _L, "t.multicall=,t.url=", _tracker_hosts, "tracker host names"),
    )
}

# Always fetched: what identifies a torrent and what the engine needs to know
# whether an action is already done (a stopped torrent gets no `stop`).
IDENTITY: tuple[str, ...] = ("hash", "name", "complete", "started", "open", "size")


@dataclass(frozen=True, slots=True)
class Torrent:
    """One download as rtorrent reported it in one snapshot. Unfetched fields are None."""

    hash: str
    name: str
    label: str | None = None
    directory: str | None = None
    path: str | None = None
    multi_file: bool | None = None
    complete: bool | None = None
    started: bool | None = None
    active: bool | None = None
    open: bool | None = None
    private: bool | None = None
    ratio: float | None = None
    size: int | None = None
    done: int | None = None
    uploaded: int | None = None
    downloaded: int | None = None
    up_rate: int | None = None
    down_rate: int | None = None
    added: int | None = None
    finished: int | None = None
    message: str | None = None
    peers: int | None = None
    seeders: int | None = None
    leechers: int | None = None
    scraped: int | None = None
    trackers: tuple[str, ...] | None = None


def fields_for(names: Iterable[str]) -> tuple[Field, ...]:
    """The fields to fetch for `names`, identity first, each once, in table order."""
    wanted = set(IDENTITY) | set(names)
    unknown = wanted - set(FIELDS)
    if unknown:
        raise KeyError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return tuple(f for f in FIELDS.values() if f.name in wanted)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a torrent as rtorrent lists it: `f.path` (relative to
    `d.directory`) and `f.size_bytes`."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read `d.multicall2` rows: the commands to send, and for each field
    the positions of its commands in a row and how to convert a whole column."""

    fields: tuple[Field, ...]
    commands: tuple[str, ...]
    positions: tuple[tuple[int, ...], ...]
    columns: tuple[ConvertColumn, ...] = ()


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
    columns = tuple(_column_converter(field.convert) for field in fields)
    return Layout(tuple(fields), tuple(commands), tuple(positions), columns)


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
    raw = _transpose(rows, len(plan.commands))
    values = {
        field.name: convert([raw[i] for i in slots])
        for field, slots, convert in zip(plan.fields, plan.positions, plan.columns, strict=True)
    }
    return tuple(frozen_batch(Torrent, len(rows), values))


def _transpose(rows: Sequence[object], width: int) -> list[tuple[object, ...]]:
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
    """`column` itself when every value is an int (not a bool), else `_int`'s error."""
    if set(map(type, column)) <= {int}:
        return column  # type: ignore[return-value]
    return list(map(_int, column))  # raises at the first bad value


def _strs(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    column = raw[0]
    return column if set(map(type, column)) <= {str} else list(map(_str, column))


def _ints_column(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    return _ints(raw[0])


def _bools(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    return list(map(bool, _ints(raw[0])))  # bool(n) is n != 0


def _ratios(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    return [n / 1000 for n in _ints(raw[0])]


def _timestamps(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    return [n if n > 0 else None for n in _ints(raw[0])]


def _scrape_maxes(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`_scrape_max` for a whole column: checked in bulk, then one expression per
    torrent; any odd shape goes through `_scrape_max` for its exact error."""
    column = raw[0]
    if not _all_rows_of_ints(column):
        return list(map(_scrape_max, zip(column, strict=True)))
    trackers = cast(Sequence[Sequence[tuple[int, int]]], column)
    if set(map(len, trackers)) == {1}:  # the usual library: one tracker each
        return [n if when > 0 else None for n, when in map(itemgetter(0), trackers)]
    return [max([n for n, when in rows if when > 0], default=None) for rows in trackers]


def _latest_scrapes(raw: Sequence[Sequence[object]]) -> Sequence[object]:
    """`_latest_scrape` for a whole column, checked in bulk like `_scrape_maxes`."""
    column = raw[0]
    if not _all_rows_of_ints(column, width=1):
        return list(map(_latest_scrape, zip(column, strict=True)))
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
    _scrape_max: _scrape_maxes,
    _latest_scrape: _latest_scrapes,
    _first_str: _strs,
    _first_int: _ints_column,
    _first_bool: _bools,
    _ratio: _ratios,
    _nonzero_timestamp: _timestamps,
}


# Names the engine computes from a snapshot, the clock and the daemon's memory;
# rules use them like fields. All durations are in seconds.
DERIVED: Mapping[str, Kind] = {
    "age": Kind.DURATION,  # now - added
    "seeding_time": Kind.DURATION,  # now - finished; 0 while incomplete
    "idle": Kind.DURATION,  # since `uploaded` last grew, counted from first seen
    "message_age": Kind.DURATION,  # how long the current non-empty message has stood
    "scrape_age": Kind.DURATION,  # now - scraped: how old the seeders/leechers figures are
    "uploaded_recent": Kind.NUMBER,  # bytes uploaded over [daemon] window, as watched
    "hardlinked": Kind.BOOL,  # every file has another hard link (e.g. archived)
    "shared": Kind.BOOL,  # another loaded torrent lists one of its files
}

# Derived names that need each file of a torrent listed (`f.multicall`) and stat'ed:
# computed only where a condition's outcome depends on them (engine.files_wanted).
EXPENSIVE: frozenset[str] = frozenset({"hardlinked", "shared"})

# What each derived name needs fetched from rtorrent.
DERIVED_NEEDS: Mapping[str, tuple[str, ...]] = {
    "age": ("added",),
    "seeding_time": ("finished",),
    "idle": ("uploaded",),
    "message_age": ("message",),
    "scrape_age": ("scraped",),
    "uploaded_recent": ("uploaded",),
    "hardlinked": ("directory", "path"),
    "shared": ("directory", "path"),
}


def name_kinds() -> dict[str, Kind]:
    """Every name a condition may use, with its kind."""
    return {**{f.name: f.kind for f in FIELDS.values()}, **DERIVED}
