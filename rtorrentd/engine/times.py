"""`seed_time`, `leech_time`, `last_upload`: time as trackers count it. Pure.

Trackers' hit-and-run rules count the time a torrent was seeded (complete, started
and announcing), not the time since it completed; rtorrent keeps no such figure.
The daemon accumulates it between polls: when a torrent was seeding at the poll
before and at this one, the time between counts, at most `cap` (twice the poll
interval), so a daemon that was stopped or stalled never credits time it did not
see. `leech_time` likewise for incomplete, started and active.

The figures survive restarts of the daemon and of rtorrent: the daemon writes them
into rtorrent's own session as `d.custom=rtorrentd.times` (`RECORD_KEY`), text
`seed,leech,last_upload,since` in whole seconds, only for torrents whose figures
moved by more than `STEP`, at most `WRITES_PER_POLL` a poll, those that moved
most first (service.poll writes them, batched). rtorrent saves
custom values with its session (every 20 minutes by default, and on a clean
exit), so a crash of rtorrent loses at most that much. A torrent first seen
without a record starts from zero, now (`seed_time_since`): rtorrent knows when
it finished, not how long it was stopped since, and counting that would release a
torrent before the tracker does.
"""

from __future__ import annotations

from dataclasses import dataclass

RECORD_KEY = "rtorrentd.times"
STEP = 3600.0  # seconds a figure moves before it is written again
# Records written per poll at most: a d.custom.set costs rtorrent ~0.7 ms
# (bench/times.py), so writing all of 10,000 torrents would cost 16 polls' time.
WRITES_PER_POLL = 50

IDLE, SEEDING, LEECHING = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Times:
    """One torrent's figures: seconds seeded and leeched, when `uploaded` last grew
    (None: not seen), since when they are counted, and the last poll's state."""

    seed: float
    leech: float
    last_upload: float | None
    since: float
    polled: float
    state: int


def state_of(complete: bool | None, started: bool | None, active: bool | None) -> int:
    """SEEDING, LEECHING or IDLE (also when anything is unknown)."""
    if not (started and active) or complete is None:
        return IDLE
    return SEEDING if complete else LEECHING


def parse_record(text: str | None) -> tuple[float, float, float | None, float] | None:
    """A record as written by `record`; None if absent or not ours."""
    parts = (text or "").split(",")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    seed, leech, last, since = (int(p) for p in parts)
    return float(seed), float(leech), float(last) if last else None, float(since)


def record(times: Times) -> str:
    """The text kept in rtorrent for `times`."""
    last = int(times.last_upload) if times.last_upload is not None else 0
    return f"{int(times.seed)},{int(times.leech)},{last},{int(times.since)}"


def first(saved: str | None, state: int, now: float, grew_at: float | None) -> Times:
    """The figures of a torrent first seen now: from its record, else from zero."""
    parsed = parse_record(saved)
    if parsed is None:
        return Times(0.0, 0.0, grew_at, now, now, state)
    seed, leech, last, since = parsed
    return Times(seed, leech, grew_at if grew_at is not None else last, since, now, state)


def advance(times: Times, state: int, now: float, cap: float, grew_at: float | None) -> Times:
    """The figures one poll later: the gap counts if the state held at both polls."""
    credit = min(max(now - times.polled, 0.0), cap) if state == times.state else 0.0
    seed = times.seed + (credit if state == SEEDING else 0.0)
    leech = times.leech + (credit if state == LEECHING else 0.0)
    last = grew_at if grew_at is not None else times.last_upload
    return Times(seed, leech, last, times.since, now, state)


def moved_by(times: Times, saved: str | None) -> float:
    """How far the figures are from the record (seconds; no record: infinitely)."""
    parsed = parse_record(saved)
    if parsed is None:
        return float("inf")
    return abs(times.seed - parsed[0]) + abs(times.leech - parsed[1])


def moved(times: Times, saved: str | None) -> bool:
    """Whether `times` differ enough from the record in rtorrent to write again."""
    parsed = parse_record(saved)
    if parsed is None:
        return True
    seed, leech, last, since = parsed
    return (
        abs(times.seed - seed) > STEP
        or abs(times.leech - leech) > STEP
        or (times.last_upload is not None and int(times.last_upload) != int(last or 0))
        or int(times.since) != int(since)
    )
