"""What the daemon remembers between polls, in memory only.

rtorrent does not say when a torrent last uploaded anything, nor how long a tracker
message has stood, so the daemon works it out by comparing snapshots: `remember`
folds each poll into a `Memory`, and the engine reads `idle` and `message_age` from
it. Nothing is written to disk; after a restart every torrent counts as first seen
then, which only makes `idle` and `message_age` start again from zero (the safe side).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from rtorrentd.torrent import Torrent


@dataclass(frozen=True, slots=True)
class Seen:
    """What the daemon knows about one torrent from the polls it has seen it in.

    `uploaded` is the last known `d.up.total` and `grew_at` when it last grew (None:
    not since first seen). `message` is the current non-empty tracker message and
    `message_since` when the daemon first saw that text (both None: no message).
    Times are unix seconds.
    """

    first_seen: float
    uploaded: int | None = None
    grew_at: float | None = None
    message: str | None = None
    message_since: float | None = None


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


def remember(memory: Memory, torrents: Sequence[Torrent], now: float) -> Memory:
    """Fold one snapshot taken at `now` into `memory`; returns a new Memory.

    Hashes absent from `torrents` are forgotten: the torrent left the client. A None
    `uploaded` or `message` means the field was not fetched this poll (no rule needs
    it), so what was known about it is kept rather than reset.
    """
    before = memory.seen
    after = {t.hash: _update(before.get(t.hash), t, now) for t in torrents}
    return Memory(MappingProxyType(after))


def _update(seen: Seen | None, torrent: Torrent, now: float) -> Seen:
    if seen is None:
        message = torrent.message or None
        return Seen(now, torrent.uploaded, None, message, None if message is None else now)
    if _unchanged(seen, torrent):
        return seen  # the usual case: share the old record, allocate nothing
    uploaded, grew_at = _upload(seen, torrent.uploaded, now)
    message, since = _message(seen, torrent.message, now)
    return Seen(seen.first_seen, uploaded, grew_at, message, since)


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


def _message(seen: Seen, message: str | None, now: float) -> tuple[str | None, float | None]:
    if message is None:
        return seen.message, seen.message_since
    if not message:
        return None, None
    if message == seen.message:
        return seen.message, seen.message_since
    return message, now
