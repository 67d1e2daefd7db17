"""The rule engine: a pure function from one snapshot to a `Plan`.

`plan` does no I/O and reads no clock: the time of the snapshot is the `now`
argument, and what earlier polls saw arrives as a `Memory`. So every decision can be
tested with hand-made torrents, and `rtorrentd plan` shows exactly what
`rtorrentd run` would do.

Strategy: facts (name → value) are built once per torrent and only for the names
the configuration references: derived names column by column, then one dict per
torrent from a function made for exactly those names (see `_facts_maker`). Then
each rule in turn is tested, through C-level `map`, against the torrents no earlier
rule decided, so the per-torrent cost of a rule is the condition call itself and
nothing else. bench/engine.py measures both halves.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress

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
    facts = build_facts(torrents, config.names(), now, memory)
    decided = _decide(torrents, facts, config.rules)
    # Free-space policies (config.space) are planned: they will choose among the
    # torrents no rule decided, so a `keep` rule protects from them by construction.
    # Until then config.space is not acted on.
    steps, held, notes = _apply_safety(decided, len(torrents), config.safety)
    return Plan(steps, held, notes, len(torrents), len(torrents) - len(steps) - len(held))


def decide(torrent: Torrent, config: Config, now: float, memory: Memory) -> Step | None:
    """The step the rules give one torrent, without safety valves (they judge a whole
    snapshot); None when no rule gives one. For re-checking a step against fresh
    values just before carrying it out."""
    steps = _decide([torrent], build_facts([torrent], config.names(), now, memory), config.rules)
    return steps[0] if steps else None


# --- facts -----------------------------------------------------------------------


def build_facts(
    torrents: Sequence[Torrent], names: frozenset[str], now: float, memory: Memory
) -> list[Facts]:
    """One facts dict per torrent holding exactly `names` (None = unknown)."""
    table, derived = _split_names(names)
    order = sorted(derived)
    columns = [_DERIVED_COLUMNS[name](torrents, now, memory) for name in order]
    return list(map(_facts_maker(sorted(table), order), torrents, *columns))


def _split_names(names: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    unknown = names - FIELDS.keys() - DERIVED.keys()
    if unknown:
        raise ConfigError(f"unknown name(s) in conditions: {', '.join(sorted(unknown))}")
    return names & FIELDS.keys(), names & DERIVED.keys()


def _facts_maker(table: Sequence[str], derived: Sequence[str]) -> Callable[..., Facts]:
    """A function `(torrent, *derived values) -> facts` built for exactly these names.

    Why generated: a dict display (`{"ratio": t.ratio, ...}`) is the cheapest way
    CPython has to build a dict, about 2.5x faster than `dict(zip(names, row))`,
    and building 50,000 dicts is half the cost of a plan. The source holds only
    names from the FIELDS and DERIVED tables (checked identifiers), never values.
    """
    if not all(name.isidentifier() for name in (*table, *derived)):
        raise ConfigError(f"not a plain name: {[*table, *derived]}")
    params = ", ".join(["_t", *(f"_{name}" for name in derived)])
    items = [f"{name!r}: _t.{name}" for name in table]
    items += [f"{name!r}: _{name}" for name in derived]
    maker: Callable[..., Facts] = eval(f"lambda {params}: {{{', '.join(items)}}}", {})
    return maker


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


def _never(torrent: Torrent) -> bool:
    return False


def _always(torrent: Torrent) -> bool:
    return True


# Whether a torrent is already where an action leads, so needs no step. A torrent
# that rtorrent still reports is still loaded, so remove and delete always apply.
_ALREADY_DONE: Mapping[Action, Callable[[Torrent], bool]] = {
    Action.KEEP: _always,
    Action.STOP: _already_stopped,
    Action.REMOVE: _never,
    Action.DELETE: _never,
}


def _decide(
    torrents: Sequence[Torrent], facts: Sequence[Facts], rules: Sequence[Rule]
) -> list[Step]:
    """Steps in rule order, then snapshot order; each torrent decided by one rule."""
    steps: list[Step] = []
    pending, pending_facts = list(torrents), list(facts)
    for rule in rules:
        hits = list(map(rule.when.test, pending_facts))
        if not any(hits):
            continue  # the common case for a selective rule: nothing to rebuild
        steps += _steps_for(rule, compress(pending, hits), compress(pending_facts, hits))
        misses = list(map(operator.not_, hits))
        pending = list(compress(pending, misses))
        pending_facts = list(compress(pending_facts, misses))
    return steps


def _steps_for(rule: Rule, torrents: Iterable[Torrent], facts: Iterable[Facts]) -> list[Step]:
    """The steps for the torrents `rule` decides; a `keep` or a done action gives none."""
    done = _ALREADY_DONE[rule.action]
    action, name, names = rule.action, rule.name, sorted(rule.when.names)
    # One comprehension, no helper call per step: a first poll over a large library
    # can decide thousands of torrents at once.
    return [
        Step(t.hash, t.name, action, name, tuple([(n, f[n]) for n in names]), t.size)
        for t, f in zip(torrents, facts, strict=True)
        if not done(t)
    ]


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
