"""Every name a rule can use, stored or derived, declared once in `NAMES`.

A name is either a `Field`, stored by rtorrent and read with `d.multicall2`
commands, or `Derived`, computed by the engine from stored fields, the clock and
the daemon's memory (`engine.derived` holds the computations, keyed by name).
Each has a `Kind`, which the condition language type-checks with (`size > 1GiB`),
the plan report formats by (`12.4 GiB`, `14d3h`) and the README's "Condition
fields" table shows (tests/test_vocabulary.py checks it against `readme_table`).
A new name is one entry here (and, if derived, its computation).

`fields_for()` asks rtorrent only for the commands of the fields a configuration
references (plus `IDENTITY`), so a poll costs rtorrent as little as possible
(RTORRENT.md: ≈ 540 bytes per torrent for 15 fields).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote, urlsplit


class Kind(Enum):
    """What sort of value a name holds; the value is its word in the README."""

    BOOL = "bool"
    NUMBER = "number"  # int or float without a unit: ratio, peers
    SIZE = "size"  # bytes (int)
    RATE = "rate"  # bytes per second (int)
    DURATION = "duration"  # seconds
    TIMESTAMP = "timestamp"  # unix seconds (int)
    STRING = "string"
    STRINGS = "list"  # tuple[str, ...]


# The kinds a torrent can be ordered by (`order = "seeding_time desc"`) and that
# `<`, `>`, arithmetic apply to.
NUMERIC_KINDS: frozenset[Kind] = frozenset(
    {Kind.NUMBER, Kind.SIZE, Kind.RATE, Kind.DURATION, Kind.TIMESTAMP}
)

Convert = Callable[[Sequence[object]], object]


@dataclass(frozen=True, slots=True)
class Field:
    """A name rtorrent stores: the commands it reads and how their raw values
    (one per command, in order) become the value."""

    name: str
    kind: Kind
    doc: str
    commands: tuple[str, ...]
    convert: Convert


@dataclass(frozen=True, slots=True)
class Derived:
    """A name the engine computes (engine.derived) from the stored fields it
    `needs`; `expensive` ones need each file of a torrent listed and stat'ed."""

    name: str
    kind: Kind
    doc: str
    needs: tuple[str, ...]
    expensive: bool = False


Entry = Field | Derived


# --- converters: raw values of a field's commands to its value ----------------------
# Public because rtorrent.rows pairs the plain ones with a faster column-wise form.


def to_int(raw: object) -> int:
    """`raw` if it is an int (not a bool); else TypeError."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"expected an integer, got {raw!r}")
    return raw


def to_str(raw: object) -> str:
    """`raw` if it is a str; else TypeError."""
    if not isinstance(raw, str):
        raise TypeError(f"expected a string, got {raw!r}")
    return raw


def first_int(values: Sequence[object]) -> int:
    """The one command's integer."""
    return to_int(values[0])


def first_str(values: Sequence[object]) -> str:
    """The one command's text."""
    return to_str(values[0])


def first_bool(values: Sequence[object]) -> bool:
    """The one command's integer as a flag (rtorrent has no booleans)."""
    return to_int(values[0]) != 0


def label(values: Sequence[object]) -> str:
    """`d.custom1` decoded: ruTorrent stores labels URL-encoded (PHP `rawurlencode`:
    `My%20Label`). Text without a valid `%XX` comes back unchanged (`100%`)."""
    return unquote(to_str(values[0]))


def tags(values: Sequence[object]) -> tuple[str, ...]:
    """`d.custom1` as Flood and cross-seed write it: comma-separated tags, each
    URL-encoded (`a,b%2Cc` is `a` and `b,c`); blanks around a tag dropped, each once."""
    parts = (unquote(part).strip() for part in to_str(values[0]).split(","))
    return tuple(dict.fromkeys(part for part in parts if part))


def strings(values: Sequence[object]) -> tuple[str, ...]:
    """The one command's list of text (`d.views`)."""
    raw = values[0]
    if not isinstance(raw, list):
        raise TypeError(f"expected a list of strings, got {raw!r}")
    return tuple(map(to_str, raw))


def ratio(values: Sequence[object]) -> float:
    """`d.ratio` is in thousandths."""
    return to_int(values[0]) / 1000


def custom_timestamp(raw: object) -> int | None:
    """A timestamp some tool wrote into a `d.custom` key as text: unix seconds,
    maybe with the newline of ruTorrent's `execute.capture={date,+%s}`; None for
    a missing key ("") or anything but a positive integer."""
    text = to_str(raw).strip()
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    return None


def added(values: Sequence[object]) -> int | None:
    """`d.custom=addtime` (ruTorrent, cross-seed), else first start, else load date."""
    custom, started, loaded = values
    written = custom_timestamp(custom)
    if written is not None:
        return written
    for stamp in (to_int(started), to_int(loaded)):
        if stamp > 0:
            return stamp
    return None


def finished(values: Sequence[object]) -> int | None:
    """`d.timestamp.finished`, else ruTorrent's `d.custom=seedingtime` (the time it
    saw the torrent complete): rtorrent's 0 means it never recorded one."""
    stamp, custom = values
    return stamp if (stamp := to_int(stamp)) > 0 else custom_timestamp(custom)


def path(values: Sequence[object]) -> str:
    """`d.base_path`, or its reconstruction when rtorrent has not opened the torrent.

    RTORRENT.md: `d.base_path` is "" for a torrent not opened since rtorrent
    started. Multi-file: the base path is the directory itself; single-file: the
    directory plus the file name (the executor checks the result against the disk).
    """
    base, directory, multi, name = values
    if to_str(base):
        return to_str(base)
    if to_int(multi):
        return to_str(directory)
    return posixpath.join(to_str(directory), to_str(name))


def _tracker_rows(raw: object) -> list[Sequence[object]]:
    if not isinstance(raw, list):
        raise TypeError(f"expected a list of trackers, got {raw!r}")
    rows: list[Sequence[object]] = []
    for row in raw:
        if not isinstance(row, list) or not row:
            raise TypeError(f"expected a tracker row, got {row!r}")
        rows.append(row)
    return rows


def scrape_max(values: Sequence[object]) -> int | None:
    """The largest scrape figure over trackers that have reported; one swarm seen by
    several trackers is the same peers counted again, so the max, not the sum."""
    reported = [to_int(row[0]) for row in _tracker_rows(values[0]) if to_int(row[1]) > 0]
    return max(reported) if reported else None


def latest_scrape(values: Sequence[object]) -> int | None:
    """When a tracker last reported a scrape figure (the newest over trackers); None
    before any did."""
    stamps = [stamp for row in _tracker_rows(values[0]) if (stamp := to_int(row[0])) > 0]
    return max(stamps) if stamps else None


def tracker_hosts(values: Sequence[object]) -> tuple[str, ...]:
    """The trackers' host names, each once, in rtorrent's order."""
    hosts: list[str] = []
    for row in _tracker_rows(values[0]):
        host = urlsplit(to_str(row[0])).hostname or ""
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


# --- the table ------------------------------------------------------------------------


def _field(name: str, kind: Kind, commands: str, convert: Convert, doc: str) -> Field:
    return Field(name, kind, doc, tuple(commands.split()), convert)


def _derived(name: str, kind: Kind, needs: str, doc: str, expensive: bool = False) -> Derived:
    return Derived(name, kind, doc, tuple(needs.split()), expensive)


_B, _N, _Z, _R = Kind.BOOL, Kind.NUMBER, Kind.SIZE, Kind.RATE
_D, _T, _S, _L = Kind.DURATION, Kind.TIMESTAMP, Kind.STRING, Kind.STRINGS
# What the names tracked between polls and kept in rtorrent need (engine.times):
# the state that counts as seeding, the upload total, and the record itself.
_TRACKED = "complete started active uploaded saved_times"
_PATH_COMMANDS = "d.base_path= d.directory= d.is_multi_file= d.name="
_ADDED_COMMANDS = "d.custom=addtime d.timestamp.started= d.load_date="
_FINISHED_COMMANDS = "d.timestamp.finished= d.custom=seedingtime"
_SCRAPE_SEEDS = "t.multicall=,t.scrape_complete=,t.scrape_time_last="
_SCRAPE_LEECH = "t.multicall=,t.scrape_incomplete=,t.scrape_time_last="
_SCRAPE_TIME = "t.multicall=,t.scrape_time_last="
_SCRAPE_DOC = "swarm {} from tracker scrapes, the max over trackers that reported"

# In README order. Docs are the README's "meaning" column (Markdown).
NAMES: Mapping[str, Entry] = {
    entry.name: entry
    for entry in (
        _field("hash", _S, "d.hash=", first_str, "info-hash, 40 upper-case hex digits"),
        _field("name", _S, "d.name=", first_str, "torrent name"),
        _field(
            "label",
            _S,
            "d.custom1=",
            label,
            "label, decoded: ruTorrent URL-encodes `d.custom1` (`My%20Label` is `My Label`)",
        ),
        _field(
            "tags",
            _L,
            "d.custom1=",
            tags,
            "`d.custom1` as comma-separated tags (Flood, cross-seed), each decoded:"
            " `a,b%2Cc` is `a` and `b,c`",
        ),
        _field(
            "views",
            _L,
            "d.views=",
            strings,
            "the views it is in, e.g. `sonarr_imported` (Sonarr, Radarr mark imports so)",
        ),
        _field(
            "ignored",
            _B,
            "d.ignore_commands=",
            first_bool,
            "`d.ignore_commands` set: rtorrent's ratio groups and `d.try_*` commands skip it",
        ),
        _field(
            "throttle",
            _S,
            "d.throttle_name=",
            first_str,
            "throttle group (a `throttle.up`/`throttle.down` name); empty: the global limits",
        ),
        _field("directory", _S, "d.directory=", first_str, "download directory"),
        _field("path", _S, _PATH_COMMANDS, path, "the torrent's data: file or directory"),
        _field("multi_file", _B, "d.is_multi_file=", first_bool, "more than one file"),
        _field("complete", _B, "d.complete=", first_bool, "all pieces downloaded"),
        _field("started", _B, "d.state=", first_bool, "started (saved state)"),
        _field("active", _B, "d.is_active=", first_bool, "running now"),
        _field("open", _B, "d.is_open=", first_bool, "files open"),
        _field("private", _B, "d.is_private=", first_bool, "private torrent"),
        _field("ratio", _N, "d.ratio=", ratio, "uploaded / size (1.0 = one copy)"),
        _field("size", _Z, "d.size_bytes=", first_int, "total size"),
        _field("done", _Z, "d.bytes_done=", first_int, "downloaded and checked"),
        _field("uploaded", _Z, "d.up.total=", first_int, "uploaded, all time"),
        _field("downloaded", _Z, "d.down.total=", first_int, "downloaded, all time"),
        _field("up_rate", _R, "d.up.rate=", first_int, "upload rate now"),
        _field("down_rate", _R, "d.down.rate=", first_int, "download rate now"),
        _field(
            "added",
            _T,
            _ADDED_COMMANDS,
            added,
            "when added: `d.custom=addtime` (ruTorrent, cross-seed), else first start,"
            " else load time",
        ),
        _field(
            "finished",
            _T,
            _FINISHED_COMMANDS,
            finished,
            "when completed: `d.timestamp.finished`, else ruTorrent's `d.custom=seedingtime`",
        ),
        _field("message", _S, "d.message=", first_str, "last tracker error text"),
        _field("peers", _N, "d.peers_connected=", first_int, "connected peers"),
        _field("seeders", _N, _SCRAPE_SEEDS, scrape_max, _SCRAPE_DOC.format("seeders")),
        _field("leechers", _N, _SCRAPE_LEECH, scrape_max, _SCRAPE_DOC.format("leechers")),
        _field(
            "scraped",
            _T,
            _SCRAPE_TIME,
            latest_scrape,
            "when a tracker last reported scrape figures (newest over trackers)",
        ),
        _field("trackers", _L, "t.multicall=,t.url=", tracker_hosts, "tracker host names"),
        _field(
            "saved_times",
            _S,
            "d.custom=rtorrentd.times",
            first_str,
            "rtorrentd's record of `seed_time`, `leech_time`, `last_upload`,"
            " `seed_time_since` in rtorrent's session; empty until written",
        ),
        _derived("age", _D, "added", "now - `added`"),
        _derived("seeding_time", _D, "finished", "now - `finished`; 0 while incomplete"),
        _derived(
            "idle",
            _D,
            _TRACKED,
            "since rtorrentd last saw `uploaded` grow, counted from when it first saw the torrent;"
            " kept across restarts",
        ),
        _derived("message_age", _D, "message", "how long the current tracker message has stood"),
        _derived(
            "unregistered",
            _B,
            "message trackers",
            "`message` says the tracker no longer has the torrent (README: Unregistered"
            " torrents), and none of its trackers looks down this poll",
        ),
        _derived(
            "scrape_age",
            _D,
            "scraped",
            "now - `scraped`: how old the `seeders`/`leechers` figures are",
        ),
        _derived(
            "uploaded_recent",
            _Z,
            _TRACKED,
            "uploaded over the last `[daemon] window`, counting only the time the daemon"
            " has watched; kept across restarts",
        ),
        _derived(
            "seed_time",
            _D,
            _TRACKED,
            "time complete, started and active, as rtorrentd watched it (README: Time as"
            " trackers count it); kept across restarts",
        ),
        _derived(
            "leech_time",
            _D,
            _TRACKED,
            "time incomplete, started and active, likewise",
        ),
        _derived(
            "last_upload",
            _T,
            _TRACKED,
            "when rtorrentd last saw `uploaded` grow; kept across restarts",
        ),
        _derived(
            "seed_time_since",
            _T,
            _TRACKED,
            "since when rtorrentd counts `seed_time` and `leech_time` for the torrent",
        ),
        _derived(
            "hardlinked",
            _B,
            "directory path",
            "every file of the torrent has another hard link (e.g. it was archived)",
            expensive=True,
        ),
        _derived(
            "shared",
            _B,
            "directory path",
            "another loaded torrent lists one of its files (cross-seeding the same data)",
            expensive=True,
        ),
    )
}

# --- views of the table ------------------------------------------------------------------

FIELDS: Mapping[str, Field] = {n: e for n, e in NAMES.items() if isinstance(e, Field)}
DERIVED: Mapping[str, Derived] = {n: e for n, e in NAMES.items() if isinstance(e, Derived)}

# Derived names that need each file of a torrent listed (`f.multicall`) and stat'ed:
# computed only where a condition's outcome depends on them (engine.files_wanted).
EXPENSIVE: frozenset[str] = frozenset(n for n, e in DERIVED.items() if e.expensive)

# Always fetched: what identifies a torrent and what the engine needs to know
# whether an action is already done (a stopped torrent gets no `stop`).
IDENTITY: tuple[str, ...] = ("hash", "name", "complete", "started", "open", "size")

# Where a torrent's data is: what the sharing check needs of every loaded torrent
# (deletion.neighbours), and what an instance publishes for the others (peers).
PATH_NAMES: frozenset[str] = frozenset({"path", "directory", "multi_file"})


def name_kinds() -> dict[str, Kind]:
    """Every name a condition may use, with its kind."""
    return {name: entry.kind for name, entry in NAMES.items()}


def needs(name: str) -> tuple[str, ...]:
    """The stored fields `name` is read from: itself, or what it is derived from."""
    entry = NAMES[name]
    return (name,) if isinstance(entry, Field) else entry.needs


def fields_for(names: Iterable[str], *, identity: bool = True) -> tuple[Field, ...]:
    """The fields to fetch for `names`, identity first, each once, in table order.
    Without `identity`, of it only what names a torrent (`hash`, `name`): for a list
    read for the paths alone, which rtorrent answers a third faster."""
    wanted = set(IDENTITY if identity else ("hash", "name")) | set(names)
    unknown = wanted - set(FIELDS)
    if unknown:
        raise KeyError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return tuple(f for f in FIELDS.values() if f.name in wanted)


# --- the README's table -------------------------------------------------------------------

README_HEADER = ("name", "kind", "meaning", "read from")


def readme_rows() -> tuple[tuple[str, str, str, str], ...]:
    """The README's "Condition fields" table, one row per name, in table order."""
    return tuple((f"`{e.name}`", e.kind.value, e.doc, _source(e)) for e in NAMES.values())


def readme_table() -> str:
    """`readme_rows` as the Markdown table the README holds."""
    rows = [README_HEADER, tuple("---" for _ in README_HEADER), *readme_rows()]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _source(entry: Entry) -> str:
    if isinstance(entry, Field):
        return ", ".join(f"`{c}`" for c in _shown_commands(entry.commands))
    source = "derived from " + ", ".join(f"`{n}`" for n in entry.needs)
    return source + " and each file (`f.multicall`)" if entry.expensive else source


def _shown_commands(commands: Sequence[str]) -> list[str]:
    """`d.ratio=` as `d.ratio`, `t.multicall=,t.url=` as `t.url`: what a user greps
    rtorrent's docs for."""
    shown: list[str] = []
    for command in commands:
        for part in command.split(","):
            if part != "t.multicall=":
                shown.append(part.removesuffix("="))
    return shown
