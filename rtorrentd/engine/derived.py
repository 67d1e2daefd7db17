"""Derived names: computed per snapshot from the clock, the daemon's memory and
the files the edge read, one column (a list index-aligned with the snapshot) each.

Comprehensions over the snapshot rather than a call per torrent: at 50,000
torrents a method call each doubles a column's cost (bench/engine.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rtorrentd.engine import facts
from rtorrentd.engine.facts import Files
from rtorrentd.engine.memory import WEEK, Memory, Seen, uploaded_since
from rtorrentd.engine.unregistered import unregistered_column
from rtorrentd.torrent import Torrent


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything besides the snapshot that derived names are computed from."""

    now: float
    memory: Memory
    window: float = WEEK  # [daemon] window, for uploaded_recent
    files: Files = field(default_factory=dict)  # read files, for the EXPENSIVE names


Column = Callable[[Sequence[Torrent], Inputs], Sequence[object]]


def _age(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    now = inputs.now
    return [None if (added := t.added) is None else now - added for t in torrents]


def _seeding_time(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    now = inputs.now
    # Incomplete: not seeding yet, so 0 rather than unknown. Complete without a
    # finish time: unknown, so no seeding-time rule fires on a guess.
    return [
        0.0 if t.complete is False else None if (done := t.finished) is None else now - done
        for t in torrents
    ]


def _idle(torrents: Sequence[Torrent], inputs: Inputs) -> list[float]:
    now, get = inputs.now, inputs.memory.seen.get
    # Seen.quiet_since() inlined: a method call per torrent doubles the cost.
    return [
        0.0
        if (s := get(t.hash)) is None
        else now - (s.first_seen if s.grew_at is None else s.grew_at)
        for t in torrents
    ]


def _message_age(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    now, get = inputs.now, inputs.memory.seen.get
    # Most torrents have no message: they skip the call.
    return [_message_age_one(m, get(t.hash), now) if (m := t.message) else None for t in torrents]


def _message_age_one(message: str, seen: Seen | None, now: float) -> float:
    if seen is None or seen.message != message or seen.message_since is None:
        return 0.0  # a message memory has not seen yet: first seen now
    return now - seen.message_since


def _scrape_age(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    now = inputs.now
    return [None if (when := t.scraped) is None else now - when for t in torrents]


def _uploaded_recent(torrents: Sequence[Torrent], inputs: Inputs) -> list[int]:
    # Counts only what the daemon watched: a torrent first seen an hour ago has
    # an hour's upload, not a window's (memory.uploaded_since).
    get, then = inputs.memory.seen.get, inputs.now - inputs.window
    return [0 if (s := get(t.hash)) is None else uploaded_since(s, then) for t in torrents]


def _unregistered(torrents: Sequence[Torrent], inputs: Inputs) -> list[bool | None]:
    # The whole column at once: the tracker-down guard counts per tracker.
    return unregistered_column([t.message for t in torrents], [t.trackers for t in torrents])


def _seed_time(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    get = inputs.memory.seen.get
    return [
        None if (s := get(t.hash)) is None or s.times is None else s.times.seed for t in torrents
    ]


def _leech_time(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    get = inputs.memory.seen.get
    return [
        None if (s := get(t.hash)) is None or s.times is None else s.times.leech for t in torrents
    ]


def _last_upload(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    get = inputs.memory.seen.get
    return [
        None if (s := get(t.hash)) is None or s.times is None else s.times.last_upload
        for t in torrents
    ]


def _seed_time_since(torrents: Sequence[Torrent], inputs: Inputs) -> list[float | None]:
    get = inputs.memory.seen.get
    return [
        None if (s := get(t.hash)) is None or s.times is None else s.times.since for t in torrents
    ]


def _hardlinked(torrents: Sequence[Torrent], inputs: Inputs) -> list[bool | None]:
    get = inputs.files.get
    return [None if (f := get(t.hash)) is None else facts.hardlinked(f) for t in torrents]


def _shared(torrents: Sequence[Torrent], inputs: Inputs) -> list[bool | None]:
    get = inputs.files.get
    by_path = facts.listers(inputs.files) if inputs.files else {}
    return [None if (f := get(t.hash)) is None else facts.shared(f, by_path) for t in torrents]


# The columns that read the daemon's memory; every other one comes out the same
# from an empty memory (tests/test_engine.py), so a one-shot plan whose rules
# use none of these need not remember its snapshot (`service.planning.plan_now`).
REMEMBERING = frozenset(
    {
        "idle",
        "message_age",
        "uploaded_recent",
        "seed_time",
        "leech_time",
        "last_upload",
        "seed_time_since",
    }
)

DERIVED_COLUMNS: Mapping[str, Column] = {
    "age": _age,
    "seeding_time": _seeding_time,
    "idle": _idle,
    "message_age": _message_age,
    "scrape_age": _scrape_age,
    "uploaded_recent": _uploaded_recent,
    "unregistered": _unregistered,
    "seed_time": _seed_time,
    "leech_time": _leech_time,
    "last_upload": _last_upload,
    "seed_time_since": _seed_time_since,
    "hardlinked": _hardlinked,
    "shared": _shared,
}
