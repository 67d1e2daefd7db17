"""The safety valves: hold back removals and deletions beyond `[safety]` limits."""

from __future__ import annotations

from rtorrentd.config.model import DELETING, LEAVING, Safety
from rtorrentd.engine.model import Step


def apply_safety(
    steps: list[Step], total: int, safety: Safety
) -> tuple[tuple[Step, ...], tuple[Step, ...], tuple[str, ...]]:
    """Hold back removals and deletions the valves do not allow; stops always pass."""
    leaving = [s for s in steps if s.action in LEAVING]
    if len(leaving) > safety.max_delete_fraction * total:
        note = _fraction_note(len(leaving), total, safety.max_delete_fraction)
        return _split(steps, set(map(id, leaving)), note)
    deletes = [s for s in steps if s.action in DELETING]
    limit = max(safety.max_deletes_per_poll, 0)
    if len(deletes) > limit:
        note = _per_poll_note(len(deletes), limit)
        return _split(steps, set(map(id, deletes[limit:])), note)
    return tuple(steps), (), ()


def _split(
    steps: list[Step], held_ids: set[int], note: str
) -> tuple[tuple[Step, ...], tuple[Step, ...], tuple[str, ...]]:
    # By identity: two steps may be equal (same torrent twice in a bad snapshot).
    go = tuple(s for s in steps if id(s) not in held_ids)
    held = tuple(s for s in steps if id(s) in held_ids)
    return go, held, (note,)


def _fraction_note(leaving: int, total: int, fraction: float) -> str:
    return (
        f"max_delete_fraction = {fraction:g}: {leaving} of {total} torrents would leave"
        f" the client, all {leaving} held back; check the rules and the snapshot"
    )


def _per_poll_note(deletes: int, limit: int) -> str:
    return (
        f"max_deletes_per_poll = {limit}: {deletes} deletions,"
        f" {deletes - limit} wait for the next poll"
    )
