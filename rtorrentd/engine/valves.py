"""The safety valves: hold back removals and deletions beyond `[safety]` limits."""

from __future__ import annotations

from itertools import compress
from operator import attrgetter, not_

from rtorrentd.config.model import DELETING, LEAVING, Action, Safety
from rtorrentd.engine.model import Step

# The action through the decision a rule's steps share, in C: `Step.action` is a
# property (a Python call per step), and `Action` hashes in Python, so each step's
# action is looked up by identity (`_marks`).
_ACTION = attrgetter("decision.action")


def apply_safety(
    steps: list[Step], total: int, safety: Safety
) -> tuple[tuple[Step, ...], tuple[Step, ...], tuple[str, ...]]:
    """Hold back removals and deletions the valves do not allow; stops always pass."""
    # A byte per step marks those a valve counts (a set of their ids was 7 MiB at
    # 100,000 steps); by position, as two steps may be equal (the same torrent
    # twice in a bad snapshot).
    leaving = _marks(steps, LEAVING)
    count = leaving.count(1)
    if count > safety.max_delete_fraction * total:
        return _split(steps, leaving, _fraction_note(count, total, safety.max_delete_fraction))
    deletes = _marks(steps, DELETING)
    count = deletes.count(1)
    limit = max(safety.max_deletes_per_poll, 0)
    if count > limit:
        return _split(steps, _after(deletes, limit), _per_poll_note(count, limit))
    return tuple(steps), (), ()


def _marks(steps: list[Step], actions: frozenset[Action]) -> bytearray:
    """1 for each step whose action is one of `actions`, 0 for the others."""
    marked = {id(action): action in actions for action in Action}
    return bytearray(map(marked.__getitem__, map(id, map(_ACTION, steps))))


def _after(marks: bytearray, limit: int) -> bytearray:
    """`marks` without its first `limit` ones."""
    end = 0
    for _ in range(limit):
        end = marks.index(1, end) + 1
    return bytearray(end) + marks[end:]


def _split(
    steps: list[Step], held: bytearray, note: str
) -> tuple[tuple[Step, ...], tuple[Step, ...], tuple[str, ...]]:
    go = tuple(compress(steps, map(not_, held)))
    return go, tuple(compress(steps, held)), (note,)


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
