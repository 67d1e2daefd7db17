"""`seed_time`, `leech_time`, `last_upload`: time as trackers count it. Pure.

Trackers' hit-and-run rules count the time a torrent was seeded (complete, started
and announcing), not the time since it completed; rtorrent keeps no such figure.
The daemon accumulates it between polls: when a torrent was seeding at the poll
before and at this one, the time between counts, at most `cap` (twice the poll
interval), so a daemon that was stopped or stalled never credits time it did not
see. `leech_time` likewise for incomplete, started and active.

The figures survive restarts of the daemon and of rtorrent: the daemon writes them
into rtorrent's own session as `d.custom=rtorrentd.times` (`RECORD_KEY`), text
`seed,leech,last_upload,since,uploaded,t0,v0,...` in whole seconds and bytes,
only for torrents whose figures moved by more than `STEP`, at most
`WRITES_PER_POLL` a poll, those that moved most first (service.poll writes them,
batched). The upload total and its samples carry `idle` and `uploaded_recent`
over a restart, trusted only while the total is still the one recorded (an
upload nobody watched counts as made at the restart). rtorrent saves
custom values with its session (every 20 minutes by default, and on a clean
exit), so a crash of rtorrent loses at most that much. A torrent first seen
without a record starts from zero, now (`seed_time_since`): rtorrent knows when
it finished, not how long it was stopped since, and counting that would release a
torrent before the tracker does.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtorrentd.holding import ByValue, Holders, values_of

RECORD_KEY = "rtorrentd.times"
STEP = 3600.0  # seconds a figure moves before it is written again
# Records written per poll at most: a d.custom.set costs rtorrent ~0.7 ms
# (bench/times.py), so writing all of 10,000 torrents would cost 16 polls' time.
WRITES_PER_POLL = 50
# Upload samples (time, total) kept in a record at most: memory keeps about 10
# (memory.SAMPLES per window and the one in force at its start).
MAX_SAMPLES = 18

IDLE, SEEDING, LEECHING = 0, 1, 2


# The 0.0 a `Times` reads from its class rather than holding (see Times): a figure
# is left out only when it is this very object, so what it holds is exactly what
# it was given. `parse_record` and `advance` hand it on.
ZERO = 0.0


@dataclass(frozen=True, eq=False, init=False)
class Times(ByValue):
    """One torrent's figures: seconds seeded and leeched, when `uploaded` last grew
    (None: not seen), since when they are counted, and the last poll's state.
    `saved_at` is when the record in rtorrent was last read or written (0: it must
    be written): no figure can move by a `STEP` sooner, so `due` spares most
    polls the comparison with the record."""

    # Why no slot here: as memory.Seen, most torrents hold the same value in most
    # figures (no leech time when complete when first seen, no seed time when
    # stopped, IDLE, no upload seen), and a slot for each made each Times 96
    # bytes, one per torrent with a record. An instance is of a subclass
    # (`Holders`) with a slot for each figure other than ZERO, None, IDLE and
    # saved_at's ZERO; the others are class attributes of that subclass. Equal,
    # hashed, copied, pickled and replaced as the plain dataclass.
    __slots__ = ()

    seed: float
    leech: float
    last_upload: float | None
    since: float
    polled: float
    state: int
    saved_at: float = ZERO

    def __new__(  # noqa: PLR0917 (the dataclass constructor's signature)
        cls,
        seed: float,
        leech: float,
        last_upload: float | None,
        since: float,
        polled: float,
        state: int,
        saved_at: float = ZERO,
    ) -> Times:
        held = (
            (seed is not ZERO)
            | (leech is not ZERO) << 1
            | (last_upload is not None) << 2
            | (state != IDLE) << 3
            | (saved_at is not ZERO) << 4
        )
        values = (seed, leech, last_upload, since, polled, state, saved_at)
        return _HOLDERS.new(held, values)

    @property
    def due(self) -> bool:
        """Whether the record may have moved enough to write it (see `moved`)."""
        return self.polled - self.saved_at > STEP


Times._record, Times._values = Times, values_of(Times)
# The figure each bit of `held` stands for (bit i), and its value when not held.
_HOLDERS = Holders(
    Times,
    [("seed", ZERO), ("leech", ZERO), ("last_upload", None), ("state", IDLE), ("saved_at", ZERO)],
)


def state_of(complete: bool | None, started: bool | None, active: bool | None) -> int:
    """SEEDING, LEECHING or IDLE (also when anything is unknown)."""
    if not (started and active) or complete is None:
        return IDLE
    return SEEDING if complete else LEECHING


@dataclass(frozen=True, slots=True)
class Record:
    """A record as read back from rtorrent. `uploaded` is `d.up.total` when it was
    written (None: a record from before totals were kept) and `samples` the upload
    history then (memory.Samples, flat `t0, v0, t1, v1, ...`)."""

    seed: float
    leech: float
    last_upload: float | None
    since: float
    uploaded: int | None = None
    samples: tuple[int, ...] = ()


def parse_record(text: str | None) -> Record | None:
    """A record as written by `record`; None if absent or not ours.

    `seed,leech,last_upload,since` (the first format), then optionally the upload
    total and the upload samples, in pairs: `,uploaded[,t0,v0,...]`."""
    parts = (text or "").split(",")
    if not (len(parts) == 4 or (len(parts) % 2 == 1 and 5 <= len(parts) <= 5 + 2 * MAX_SAMPLES)):
        return None
    if not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    seed, leech, last, since = numbers[:4]
    uploaded = numbers[4] if len(numbers) > 4 else None
    # 0 (leech time of a torrent complete when first seen, seed time of one never
    # seeded) as the one constant 0.0: a float each is 24 bytes a torrent.
    return Record(
        float(seed) if seed else ZERO,
        float(leech) if leech else ZERO,
        float(last) if last else None,
        float(since),
        uploaded,
        tuple(numbers[5:]),
    )


def record(times: Times, uploaded: int | None = None, samples: tuple[int, ...] = ()) -> str:
    """The text kept in rtorrent for `times`, with the upload total and history when
    known (from them `idle` and `uploaded_recent` carry on after a restart)."""
    last = int(times.last_upload) if times.last_upload is not None else 0
    text = f"{int(times.seed)},{int(times.leech)},{last},{int(times.since)}"
    if uploaded is None:
        return text
    return ",".join([text, str(uploaded), *map(str, thinned(samples))])


def thinned(samples: tuple[int, ...]) -> tuple[int, ...]:
    """At most `MAX_SAMPLES` of `samples`, dropping from the second-oldest on: a
    missing sample makes the total at a time look older, hence lower, so the
    upload since then comes out higher (keeps rather than deletes)."""
    excess = len(samples) // 2 - MAX_SAMPLES
    return samples if excess <= 0 else samples[:2] + samples[2 + 2 * excess :]


def advance(times: Times, state: int, now: float, cap: float, grew_at: float | None) -> Times:
    """The figures one poll later: the gap counts if the state held at both polls."""
    credit = min(max(now - times.polled, 0.0), cap) if state == times.state else 0.0
    # A figure not credited is the same object (ZERO stays ZERO: see Times).
    seed = times.seed + credit if state == SEEDING else times.seed
    leech = times.leech + credit if state == LEECHING else times.leech
    last = grew_at if grew_at is not None else times.last_upload
    return Times(seed, leech, last, times.since, now, state, times.saved_at)


def moved_by(times: Times, saved: str | None) -> float:
    """How far the figures are from the record (seconds; no record: infinitely)."""
    return distance(times, parse_record(saved))


def distance(times: Times, parsed: Record | None) -> float:
    """`moved_by` for a record already parsed (None: no record of ours)."""
    if parsed is None:
        return float("inf")
    return abs(times.seed - parsed.seed) + abs(times.leech - parsed.leech)


def moved(times: Times, saved: str | None, uploaded: int | None = None) -> bool:
    """Whether `times` (and the upload total `uploaded`) differ enough from the
    record in rtorrent to write again. An upload total the record does not hold is
    written once the torrent was quiet for a `STEP`, or its last upload moved by
    more than one: a torrent uploading all the time is not rewritten every poll,
    and a stale total only makes a restarted daemon count an upload as new (safe).
    A record younger than a `STEP` (`Times.due`) is not asked about at all."""
    return moved_from(times, parse_record(saved), uploaded)


def moved_from(times: Times, parsed: Record | None, uploaded: int | None = None) -> bool:
    """`moved` for a record already parsed (None: no record of ours): a poll
    reads each record once for both `moved` and `distance`."""
    if parsed is None:
        return True
    last = times.last_upload or 0.0
    return (
        abs(times.seed - parsed.seed) > STEP
        or abs(times.leech - parsed.leech) > STEP
        or int(times.since) != int(parsed.since)
        or (parsed.last_upload is None and times.last_upload is not None)
        or abs(last - (parsed.last_upload or 0.0)) > STEP
        or (
            uploaded is not None
            and uploaded != parsed.uploaded
            and (parsed.uploaded is None or times.polled - last > STEP)
        )
    )
