"""The rule engine: a pure function from one snapshot to a `Plan`.

`plan` does no I/O and reads no clock: the time of the snapshot is the `now`
argument, and what earlier polls saw arrives as a `Memory`. So every decision can be
tested with hand-made torrents, and `rtorrentd plan` shows exactly what
`rtorrentd run` would do.

Strategy: the snapshot is turned into columns, one list per name the
configuration references (a table field is one C-level `map(attrgetter)`, a
derived name one comprehension), and no per-torrent dict is built. Each rule in
turn selects, column-wise (`Condition.select`), among the indices of the torrents
no earlier rule decided: a comparison is one list comprehension over those
indices, and `and` narrows them before its right side runs. bench/engine.py
measures it at 50,000 torrents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter

from rtorrentd.batch import frozen_batch
from rtorrentd.config import Action, Config, Rule, Safety
from rtorrentd.errors import ConfigError
from rtorrentd.memory import Memory, Seen
from rtorrentd.torrent import DERIVED, DERIVED_NEEDS, FIELDS, IDENTITY, Torrent


@dataclass(frozen=True, slots=True)
class Step:
    """One action for one torrent, with why: the rule and the values its condition read."""

    hash: str
    name: str
    action: Action
    rule: str
    values: tuple[tuple[str, object], ...]
    size: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one poll decided.

    `steps` are to be carried out, in rule order then snapshot order; `held` are
    steps a safety valve held back this poll, and `notes` say why. `kept` counts the
    torrents with no step at all, so deletes + removes + stops + held + kept = total.
    """

    steps: tuple[Step, ...]
    held: tuple[Step, ...]
    notes: tuple[str, ...]
    total: int
    kept: int


Facts = dict[str, object]
Columns = dict[str, Sequence[object]]
Column = Callable[[Sequence[Torrent], float, Memory], Sequence[object]]


def fetch_names(config: Config) -> frozenset[str]:
    """The table fields the client must fetch for `config`: the fields its rules
    reference, those its derived names are computed from, and `IDENTITY`."""
    table, derived = _split_names(config.names())
    needed = {need for name in derived for need in DERIVED_NEEDS[name]}
    return frozenset(IDENTITY) | table | needed


def plan(torrents: Sequence[Torrent], config: Config, now: float, memory: Memory) -> Plan:
    """Decide what to do with each torrent of one snapshot taken at `now`.

    `memory` should already include this snapshot (`remember(memory, torrents, now)`);
    a torrent it does not know counts as first seen at `now`. Rules are tried in
    order and the first whose condition holds decides; a `keep` decides too, with
    no step. Then the safety valves of `config.safety` may hold steps back.
    """
    columns = build_columns(torrents, config.names(), now, memory)
    decided = _decide(torrents, columns, config.rules)
    # Free-space policies (config.space) are planned: they will choose among the
    # torrents no rule decided, so a `keep` rule protects from them by construction.
    # Until then config.space is not acted on.
    steps, held, notes = _apply_safety(decided, len(torrents), config.safety)
    return Plan(steps, held, notes, len(torrents), len(torrents) - len(steps) - len(held))


def decide(torrent: Torrent, config: Config, now: float, memory: Memory) -> Step | None:
    """The step the rules give one torrent, without safety valves (they judge a whole
    snapshot); None when no rule gives one. For re-checking a step against fresh
    values just before carrying it out."""
    columns = build_columns([torrent], config.names(), now, memory)
    steps = _decide([torrent], columns, config.rules)
    return steps[0] if steps else None


# --- columns ---------------------------------------------------------------------


def build_columns(
    torrents: Sequence[Torrent], names: frozenset[str], now: float, memory: Memory
) -> Columns:
    """One list per name in `names`, index-aligned with `torrents` (None = unknown)."""
    table, derived = _split_names(names)
    columns: Columns = {name: list(map(attrgetter(name), torrents)) for name in sorted(table)}
    for name in sorted(derived):
        columns[name] = _DERIVED_COLUMNS[name](torrents, now, memory)
    return columns


def build_facts(
    torrents: Sequence[Torrent], names: frozenset[str], now: float, memory: Memory
) -> list[Facts]:
    """One facts dict per torrent holding exactly `names` (None = unknown): what a
    condition's `test` reads. The engine itself works on `build_columns`."""
    columns = build_columns(torrents, names, now, memory)
    named = tuple(columns.items())
    return [{name: column[i] for name, column in named} for i in range(len(torrents))]


def _split_names(names: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    unknown = names - FIELDS.keys() - DERIVED.keys()
    if unknown:
        raise ConfigError(f"unknown name(s) in conditions: {', '.join(sorted(unknown))}")
    return names & FIELDS.keys(), names & DERIVED.keys()


def _age(torrents: Sequence[Torrent], now: float, memory: Memory) -> list[float | None]:
    return [None if (added := t.added) is None else now - added for t in torrents]


def _seeding_time(torrents: Sequence[Torrent], now: float, memory: Memory) -> list[float | None]:
    # Incomplete: not seeding yet, so 0 rather than unknown. Complete without a
    # finish time: unknown, so no seeding-time rule fires on a guess.
    return [
        0.0 if t.complete is False else None if (done := t.finished) is None else now - done
        for t in torrents
    ]


def _idle(torrents: Sequence[Torrent], now: float, memory: Memory) -> list[float]:
    get = memory.seen.get
    # Seen.quiet_since() inlined: a method call per torrent doubles the cost.
    return [
        0.0
        if (s := get(t.hash)) is None
        else now - (s.first_seen if s.grew_at is None else s.grew_at)
        for t in torrents
    ]


def _message_age(torrents: Sequence[Torrent], now: float, memory: Memory) -> list[float | None]:
    get = memory.seen.get
    # Most torrents have no message: they skip the call.
    return [_message_age_one(m, get(t.hash), now) if (m := t.message) else None for t in torrents]


def _message_age_one(message: str, seen: Seen | None, now: float) -> float:
    if seen is None or seen.message != message or seen.message_since is None:
        return 0.0  # a message memory has not seen yet: first seen now
    return now - seen.message_since


_DERIVED_COLUMNS: Mapping[str, Column] = {
    "age": _age,
    "seeding_time": _seeding_time,
    "idle": _idle,
    "message_age": _message_age,
}


# --- rules -----------------------------------------------------------------------


def _already_stopped(torrent: Torrent) -> bool:
    # Unknown state (None) gets the step: stopping and closing twice is harmless.
    return torrent.started is False and torrent.open is False


# Whether a torrent is already where an action leads, so needs no step; None: never.
# A `keep` is always "done": it decides with no step. A torrent that rtorrent still
# reports is still loaded, so remove and delete always apply.
_ALREADY_DONE: Mapping[Action, Callable[[Torrent], bool] | None] = {
    Action.STOP: _already_stopped,
    Action.REMOVE: None,
    Action.DELETE: None,
}
_HASH, _NAME, _SIZE = attrgetter("hash"), attrgetter("name"), attrgetter("size")


def _decide(torrents: Sequence[Torrent], columns: Columns, rules: Sequence[Rule]) -> list[Step]:
    """Steps in rule order, then snapshot order; each torrent decided by one rule."""
    steps: list[Step] = []
    # The torrents no rule has decided yet, in snapshot order; a list, because
    # iterating a range makes a new int per torrent in every scan.
    pending = list(range(len(torrents)))
    # Decided since `pending` was last rebuilt. Rebuilding costs a pass over every
    # pending torrent, which a rule that takes a handful (the usual case once a
    # library is settled) does not repay: later rules just skip these.
    stale: set[int] = set()
    for rule in rules:
        hits = rule.when.select(columns, pending)
        if stale:
            hits = [i for i in hits if i not in stale]
        if not hits:
            continue
        if rule.action is not Action.KEEP:
            steps += _steps_for(rule, torrents, columns, hits)
        stale.update(hits)
        if 8 * len(stale) > len(pending):
            pending = [i for i in pending if i not in stale]
            stale = set()
    return steps


def _steps_for(
    rule: Rule, torrents: Sequence[Torrent], columns: Columns, hits: list[int]
) -> list[Step]:
    """The steps for the torrents `rule` decides, unless already done.

    Built a field at a time (`frozen_batch`), in C, rather than a Python call per
    step: a first poll over a large library decides thousands at once.
    """
    done = _ALREADY_DONE[rule.action]
    if done is not None:
        hits = [i for i in hits if not done(torrents[i])]
    names = sorted(rule.when.names)
    # Per name, its (name, value) pairs; zipped, each step's pairs in name order.
    pairs = [list(zip(repeat(n), map(columns[n].__getitem__, hits))) for n in names]
    picked = list(map(torrents.__getitem__, hits))
    fields = {
        "hash": map(_HASH, picked),
        "name": map(_NAME, picked),
        "action": repeat(rule.action),
        "rule": repeat(rule.name),
        "values": zip(*pairs, strict=True) if names else repeat(()),
        "size": map(_SIZE, picked),
    }
    return frozen_batch(Step, len(hits), fields)


# --- safety valves ---------------------------------------------------------------

_LEAVING = frozenset({Action.REMOVE, Action.DELETE})


def _apply_safety(
    steps: list[Step], total: int, safety: Safety
) -> tuple[tuple[Step, ...], tuple[Step, ...], tuple[str, ...]]:
    """Hold back removals and deletions the valves do not allow; stops always pass."""
    leaving = [s for s in steps if s.action in _LEAVING]
    if len(leaving) > safety.max_delete_fraction * total:
        note = _fraction_note(len(leaving), total, safety.max_delete_fraction)
        return _split(steps, set(map(id, leaving)), note)
    deletes = [s for s in steps if s.action is Action.DELETE]
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
