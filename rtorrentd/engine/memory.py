"""What the daemon remembers between polls.

rtorrent does not say when a torrent last uploaded anything, nor how long a tracker
message has stood, so the daemon works it out by comparing snapshots: `remember`
folds each poll into a `Memory`, and the engine reads `idle` and `message_age` from
it. Nothing is written to disk: after a restart `message_age` starts again from
zero (the safe side). `seed_time` and the like (engine.times), and `idle` and
`uploaded_recent` with them, are tracked when a rule uses them, and their record
lives in rtorrent (`d.custom=rtorrentd.times`): a torrent first seen with a record
takes its upload history from it (`_resumed`) while the upload total is still the
one recorded.

`uploaded_recent` (bytes uploaded over the last `window`) needs the upload total
as it was a window ago. Each `Seen` keeps a few (time, total) samples, taken only
when the total changes, at most `SAMPLES` per window: a change closer than
window / SAMPLES to the sample before replaces the newest sample instead of adding
one. That moves the change earlier in time, so the figure can only come out higher
than the truth, which keeps a torrent rather than delete it; samples older than
the one in force a window ago are dropped.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from operator import itemgetter
from types import MappingProxyType

from rtorrentd.engine import times as timing
from rtorrentd.engine.times import ZERO, Times
from rtorrentd.holding import ByValue, Holders, values_of
from rtorrentd.torrent import Torrent

WEEK = 7 * 86400.0  # [daemon] window's default

# Samples of the upload total per window; memory per torrent stays bounded.
SAMPLES = 8

# Samples are (unix seconds, d.up.total from then on) pairs, stored flat as one
# tuple of ints, t0, v0, t1, v1, ...: a tuple holding only ints is untracked by
# the garbage collector, while a tuple of pairs is several tracked objects per
# torrent, and tens of thousands of those slow every collection during a poll.
Samples = tuple[int, ...]


@dataclass(frozen=True, eq=False, init=False)
class Seen(ByValue):
    """What the daemon knows about one torrent from the polls it has seen it in.

    `uploaded` is the last known `d.up.total` and `grew_at` when it last grew (None:
    not since first seen). `message` is the current non-empty tracker message and
    `message_since` when the daemon first saw that text (both None: no message).
    `samples` are (time, total) points of `uploaded`, oldest first and flattened
    (`t0, v0, t1, v1, ...`), the last being the current total; empty while the
    total has not changed since first seen.
    `times` are `seed_time` and the like (engine.times; None: not tracked, no rule
    uses them) and `saved` the record of them in rtorrent, as last read or written.
    Times are unix seconds.
    """

    # Why no slot here: most torrents hold the defaults in most fields (one first
    # seen now holds first_seen, uploaded, times and saved), and a slot for every
    # field made each Seen 96 bytes, at 100,000 torrents 9 MiB at the top of the
    # poll's memory. As for `Torrent`: an instance is of a subclass (`Holders`)
    # with a slot for each field not at its default, the others read the default
    # from this class; 64 bytes for those. Equal, hashed, copied, pickled and
    # replaced as the plain dataclass, whatever fields it holds.
    __slots__ = ()

    first_seen: float
    uploaded: int | None = None
    grew_at: float | None = None
    message: str | None = None
    message_since: float | None = None
    samples: Samples = ()
    times: Times | None = None
    saved: str | None = None

    def __new__(  # noqa: PLR0917 (the dataclass constructor's signature)
        cls,
        first_seen: float,
        uploaded: int | None = None,
        grew_at: float | None = None,
        message: str | None = None,
        message_since: float | None = None,
        samples: Samples = (),
        times: Times | None = None,
        saved: str | None = None,
    ) -> Seen:
        # Bit i - 1: field i holds other than its default (first_seen always does).
        held = (
            (uploaded is not None)
            | (grew_at is not None) << 1
            | (message is not None) << 2
            | (message_since is not None) << 3
            | (samples != ()) << 4
            | (times is not None) << 5
            | (saved is not None) << 6
        )
        values = (first_seen, uploaded, grew_at, message, message_since, samples, times, saved)
        return _HOLDERS.new(held, values)


Seen._record, Seen._values = Seen, values_of(Seen)
# Bit i - 1 for field i; a field not held reads its default.
_HOLDERS = Holders(Seen, [(f.name, f.default) for f in fields(Seen)[1:]])


def _empty() -> Mapping[str, Seen]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Memory:
    """Everything remembered, by info-hash. Build new ones with `remember`."""

    seen: Mapping[str, Seen] = field(default_factory=_empty)

    @classmethod
    def empty(cls) -> Memory:
        """A memory that has seen nothing: the daemon's first poll."""
        return cls()


def remember(
    memory: Memory,
    torrents: Sequence[Torrent],
    now: float,
    window: float = WEEK,
    cap: float | None = None,
) -> Memory:
    """Fold one snapshot taken at `now` into `memory`; returns a new Memory.

    Hashes absent from `torrents` are forgotten: the torrent left the client. A None
    `uploaded` or `message` means the field was not fetched this poll (no rule needs
    it), so what was known about it is kept rather than reset. `window` is how far
    back `uploaded_recent` looks ([daemon] window): upload samples cover it.
    With `cap` (seconds credited at most per gap between polls), `seed_time` and
    the like are tracked for the torrents whose `active` was fetched.
    """
    before = memory.seen
    shared: SharedTimes = {}
    after = {
        t.hash: _update(before.get(t.hash), t, now, window, cap, shared=shared) for t in torrents
    }
    return Memory(MappingProxyType(after))


def unsaved(memory: Memory, limit: int = timing.WRITES_PER_POLL) -> dict[str, str]:
    """The records to write to rtorrent: torrents whose figures moved (times.moved),
    at most `limit`, those that moved most first (the rest wait for a later poll)."""
    # A heap of the `limit` + 1 that moved most rather than a list of every torrent
    # due: on a first poll every torrent is due, and at 100,000 such a list (and its
    # sorted copy) was the top of the poll's memory. nlargest keeps sorted()'s order
    # among equals: the memory's order.
    moved = heapq.nlargest(limit + 1, _moved(memory.seen), key=itemgetter(0))
    if len(moved) > limit:
        del moved[limit:]
    else:
        moved.sort(key=itemgetter(1))  # every one that moved: in the memory's order
    return {h: timing.record(t, s.uploaded, s.samples) for _, _, h, t, s in moved}


def _moved(seen: Mapping[str, Seen]) -> Iterator[tuple[float, int, str, Times, Seen]]:
    """(how far it moved, position, hash, times, seen) of each record that moved,
    each record parsed once (most polls: none, as none is `due`)."""
    parse, step = timing.parse_record, timing.STEP
    for index, (info_hash, s) in enumerate(seen.items()):
        t = s.times
        # `t.due` inlined: a property call per torrent per poll.
        if t is None or t.polled - t.saved_at <= step:
            continue
        parsed = parse(s.saved) if s.saved else None
        if timing.moved_from(t, parsed, s.uploaded):
            yield timing.distance(t, parsed), index, info_hash, t, s


def saved(memory: Memory, records: Mapping[str, str]) -> Memory:
    """`memory` knowing that rtorrent now holds `records`."""
    seen = dict(memory.seen)
    for info_hash, text in records.items():
        if (s := seen.get(info_hash)) is not None:
            times = None if s.times is None else replace(s.times, saved_at=s.times.polled)
            seen[info_hash] = replace(s, saved=text, times=times)
    return Memory(MappingProxyType(seen))


def uploaded_since(seen: Seen, then: float) -> int:
    """Bytes uploaded since `then`, as far as the daemon has watched: from the
    total in force at `then`, or from the oldest sample when it watched less long."""
    samples = seen.samples
    if not samples:
        return 0
    base = samples[1]
    for index in range(0, len(samples), 2):
        if samples[index] > then:
            break
        base = samples[index + 1]
    return samples[-1] - base


# The Times of torrents first tracked now without a record, by (grew_at, state): they
# are all (0, 0, grew_at, now, now, state), so torrents share one (Times is frozen).
# A first poll at 100,000 torrents holds a handful instead of 100,000, and torrents
# stopped since keep sharing them (`_timed` leaves an idle one alone).
SharedTimes = dict[tuple[float | None, int], Times]


def _update(
    seen: Seen | None,
    torrent: Torrent,
    now: float,
    window: float,
    cap: float | None,
    *,
    shared: SharedTimes,
) -> Seen:
    if seen is None:
        message = torrent.message or None
        since = None if message is None else now
        # Tracked: one Seen, not a first one only to replace it (a first poll: all).
        if cap is not None and torrent.active is not None:
            return _first_tracked(torrent, now, message, since, shared=shared)
        return Seen(now, torrent.uploaded, None, message, since)
    if _unchanged(seen, torrent):
        updated = seen  # the usual case: share the old record, allocate nothing
    else:
        uploaded, grew_at = _upload(seen, torrent.uploaded, now)
        message, since = _message(seen, torrent.message, now)
        samples = _samples(seen, torrent.uploaded, now, window)
        updated = Seen(
            seen.first_seen, uploaded, grew_at, message, since, samples, seen.times, seen.saved
        )
    if cap is None or torrent.active is None:
        return updated
    return _timed(updated, seen, torrent, now, cap, shared=shared)


def _timed(
    updated: Seen,
    before: Seen,
    torrent: Torrent,
    now: float,
    cap: float,
    *,
    shared: SharedTimes,
) -> Seen:
    state = timing.state_of(torrent.complete, torrent.started, torrent.active)
    old = updated.times
    if old is None:
        return _resumed(updated, torrent, state, now, shared=shared)
    grew = updated.grew_at != before.grew_at
    if state == timing.IDLE == old.state and not grew:
        return updated  # stopped at both polls: nothing to count, nothing to allocate
    times = timing.advance(old, state, now, cap, updated.grew_at if grew else None)
    u = updated  # Seen(...) rather than dataclasses.replace: several times faster
    return Seen(
        u.first_seen, u.uploaded, u.grew_at, u.message, u.message_since, u.samples, times, u.saved
    )


def _first_tracked(
    torrent: Torrent, now: float, message: str | None, since: float | None, *, shared: SharedTimes
) -> Seen:
    """A torrent first seen now, tracked: the figures from rtorrent's record, else
    from zero now. It takes its upload history from the record too, but only when
    the upload total still is the one recorded: an upload nobody watched (the
    daemon was down) counts as made now."""
    state = timing.state_of(torrent.complete, torrent.started, torrent.active)
    uploaded, saved = torrent.uploaded, torrent.saved_times
    found = timing.parse_record(saved) if saved else None
    if found is None:
        times = _zero(None, state, now, shared)
        return Seen(now, uploaded, None, message, since, (), times, saved)
    first_seen, grew_at, samples = _history(found, uploaded, now)
    times = _recorded(found, grew_at, uploaded, state, now)
    return Seen(first_seen, uploaded, grew_at, message, since, samples, times, saved)


def _resumed(
    updated: Seen, torrent: Torrent, state: int, now: float, *, shared: SharedTimes
) -> Seen:
    """Watched already, first tracked now: the figures from rtorrent's record, else
    from zero now; the upload history stays its own (newer than the record's)."""
    u, saved = updated, torrent.saved_times
    found = timing.parse_record(saved) if saved else None
    if found is None:
        times = _zero(u.grew_at, state, now, shared)
    else:
        times = _recorded(found, u.grew_at, u.uploaded, state, now)
    return Seen(
        u.first_seen, u.uploaded, u.grew_at, u.message, u.message_since, u.samples, times, saved
    )


def _zero(grew_at: float | None, state: int, now: float, shared: SharedTimes) -> Times:
    """The figures of a torrent first tracked now without a record: shared."""
    key = (grew_at, state)
    return shared.get(key) or shared.setdefault(key, Times(ZERO, ZERO, grew_at, now, now, state))


def _recorded(
    found: timing.Record, grew_at: float | None, uploaded: int | None, state: int, now: float
) -> Times:
    """The figures of a torrent first tracked now with record `found`."""
    # A record of the first format (no upload total) is rewritten soon.
    fresh = now if found.uploaded is not None or uploaded is None else ZERO
    return Times(found.seed, found.leech, grew_at, found.since, now, state, fresh)


def _history(
    found: timing.Record, uploaded: int | None, now: float
) -> tuple[float, float | None, Samples]:
    """(first_seen, grew_at, samples) of a torrent first seen now with record `found`."""
    recorded = found.uploaded
    if uploaded is None or recorded is None or uploaded < recorded:
        # Unknown (no total then or now) or re-added (a lower total): from now.
        return now, None, ()
    if uploaded == recorded:
        # Nothing uploaded since the record: what it says still holds.
        return found.since, found.last_upload, found.samples
    # Uploaded while nobody watched: at some time up to now, so now (the safe side).
    samples = found.samples or (int(found.since), recorded)
    return found.since, now, (*samples, int(now), uploaded)


def _unchanged(seen: Seen, torrent: Torrent) -> bool:
    uploaded, message = torrent.uploaded, torrent.message
    return (uploaded is None or uploaded == seen.uploaded) and (
        message is None or (message or None) == seen.message
    )


def _upload(seen: Seen, uploaded: int | None, now: float) -> tuple[int | None, float | None]:
    if uploaded is None:
        return seen.uploaded, seen.grew_at
    if seen.uploaded is not None and uploaded > seen.uploaded:
        return uploaded, now
    # First figure, no change, or a drop: a drop cannot come from seeding (the total
    # persists across restarts), only from the torrent being re-added, so the lower
    # figure becomes the new baseline and does not count as activity.
    return uploaded, seen.grew_at


def _samples(seen: Seen, uploaded: int | None, now: float, window: float) -> Samples:
    old = seen.uploaded
    if uploaded is None or old is None or uploaded == old:
        return seen.samples
    if uploaded < old:
        return ()  # re-added: the lower total is the new baseline, as in `_upload`
    # The first change: the total had stood since the torrent was first seen.
    samples = seen.samples or (int(seen.first_seen), old)
    if len(samples) >= 4 and now - samples[-4] < window / SAMPLES:
        samples = samples[:-2]  # too close to the one before: replace the newest
    return _prune((*samples, int(now), uploaded), now - window)


def _prune(samples: Samples, then: float) -> Samples:
    """Drop samples before the one in force at `then`: nothing reads them again."""
    keep = 0
    for index in range(0, len(samples), 2):
        if samples[index] <= then:
            keep = index
    return samples[keep:]


def _message(seen: Seen, message: str | None, now: float) -> tuple[str | None, float | None]:
    if message is None:
        return seen.message, seen.message_since
    if not message:
        return None, None
    if message == seen.message:
        return seen.message, seen.message_since
    return message, now
