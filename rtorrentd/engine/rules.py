"""The rules over one snapshot: columns per name, then each rule in turn selects,
column-wise, among the torrents no earlier rule decided (see `plan` for the strategy).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product, repeat
from operator import attrgetter

from rtorrentd.batch import frozen_batch
from rtorrentd.conditions.parse import Condition
from rtorrentd.config.model import Action, Config, Rule
from rtorrentd.engine.derived import DERIVED_COLUMNS, Inputs
from rtorrentd.engine.facts import Files
from rtorrentd.engine.memory import WEEK, Memory
from rtorrentd.engine.model import Columns, Decision, Step
from rtorrentd.errors import ConfigError
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import DERIVED, EXPENSIVE, FIELDS

# --- columns ---------------------------------------------------------------------


def build_columns(
    torrents: Sequence[Torrent],
    names: frozenset[str],
    now: float,
    memory: Memory,
    *,
    window: float = WEEK,
    files: Files | None = None,
) -> Columns:
    """One list per name in `names`, index-aligned with `torrents` (None = unknown)."""
    return columns_for(torrents, names, Inputs(now, memory, window, files or {}))


def columns_for(torrents: Sequence[Torrent], names: frozenset[str], inputs: Inputs) -> Columns:
    table, derived = split_names(names)
    columns: Columns = {name: list(map(attrgetter(name), torrents)) for name in sorted(table)}
    for name in sorted(derived):
        columns[name] = DERIVED_COLUMNS[name](torrents, inputs)
    return columns


def split_names(names: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    unknown = names - FIELDS.keys() - DERIVED.keys()
    if unknown:
        raise ConfigError(f"unknown name(s) in conditions: {', '.join(sorted(unknown))}")
    return names & FIELDS.keys(), names & DERIVED.keys()


# --- rules -----------------------------------------------------------------------


def _already_stopped(torrent: Torrent, _target: str) -> bool:
    # Unknown state (None) gets the step: stopping and closing twice is harmless.
    return torrent.started is False and torrent.open is False


def _already_labelled(torrent: Torrent, target: str) -> bool:
    return torrent.label == target


def _already_throttled(torrent: Torrent, target: str) -> bool:
    return torrent.throttle == target


# Whether a torrent is already where an action leads (given the rule's target),
# so needs no step; None: never. A `keep` is always "done": it decides with no
# step. A torrent that rtorrent still reports is still loaded, so remove and
# delete always apply. Relabel and throttle read their field (`Config.names`).
_ALREADY_DONE: Mapping[Action, Callable[[Torrent, str], bool] | None] = {
    Action.STOP: _already_stopped,
    Action.REMOVE: None,
    Action.DELETE: None,
    Action.TRASH: None,
    Action.RELABEL: _already_labelled,
    Action.THROTTLE: _already_throttled,
}
_HASH, _NAME, _SIZE = attrgetter("hash"), attrgetter("name"), attrgetter("size")


@dataclass(frozen=True, slots=True)
class Decided:
    """What the rules decided: steps; the torrents no rule decided (`undecided`,
    computed only when asked); those a rule could not judge without their files."""

    steps: list[Step]
    undecided: list[int]
    unsure: list[int]


def decide_rules(
    torrents: Sequence[Torrent], columns: Columns, rules: Sequence[Rule], *, rest: bool = False
) -> Decided:
    """Steps in rule order, then snapshot order; each torrent decided by one rule.
    An unsure torrent is decided with no step: no later rule may act on a guess."""
    steps: list[Step] = []
    unsure_all: list[int] = []
    missing = missing_names(columns)
    # The torrents no rule has decided yet, in snapshot order; a list, because
    # iterating a range makes a new int per torrent in every scan.
    pending = list(range(len(torrents)))
    # Decided since `pending` was last rebuilt (`stale[i]` is 1), `count` of them.
    # Rebuilding costs a pass over every pending torrent, which a rule that takes a
    # handful (the usual case once a library is settled) does not repay: later
    # rules just skip these. A byte per torrent: a set of 100,000 ints was 4 MiB.
    stale = bytearray(len(torrents))
    count = 0
    for rule in rules:
        hits, unsure = select_sure(rule.when, columns, pending, missing)
        if count:
            hits = [i for i in hits if not stale[i]]
            unsure = [i for i in unsure if not stale[i]]
        if unsure:
            unsure_all += unsure
            count += _mark(stale, unsure)
        if not hits:
            continue
        if rule.action is not Action.KEEP:
            steps += steps_for(rule, torrents, columns, hits)
        count += _mark(stale, hits)
        if 8 * count > len(pending):
            pending = [i for i in pending if not stale[i]]
            stale = bytearray(len(torrents))
            count = 0
    undecided = [i for i in pending if not stale[i]] if rest else []
    return Decided(steps, undecided, unsure_all)


def _mark(mask: bytearray, indices: list[int]) -> int:
    """Set `mask[i]` for each of `indices` (none set yet); how many that is."""
    deque(map(mask.__setitem__, indices, repeat(1)), maxlen=0)  # in C
    return len(indices)


def missing_names(columns: Columns) -> frozenset[str]:
    """The expensive names whose facts some torrent lacks (its files were not read)."""
    return frozenset(n for n in EXPENSIVE if n in columns and None in columns[n])


def select_sure(
    condition: Condition, columns: Columns, candidates: list[int], missing: frozenset[str]
) -> tuple[list[int], list[int]]:
    """The candidates for which `condition` holds whatever the missing facts turn
    out to be, and those for which it depends on them (unsure), in candidate order.

    Every combination of True and False stands in for the unknown facts (at most
    four: two expensive names); a torrent whose facts are known reads its own.
    """
    names = sorted(condition.names & missing)
    if not names:
        return condition.select(columns, candidates), []
    outcomes = [
        set(condition.select({**columns, **_filled(columns, names, values)}, candidates))
        for values in product((True, False), repeat=len(names))
    ]
    sure = set.intersection(*outcomes)
    maybe = set.union(*outcomes) - sure
    return [i for i in candidates if i in sure], [i for i in candidates if i in maybe]


def _filled(columns: Columns, names: Sequence[str], values: Sequence[bool]) -> Columns:
    return {
        name: [value if known is None else known for known in columns[name]]
        for name, value in zip(names, values, strict=True)
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    """One torrent under the rules: `decided` by a rule (or unsure), with its step."""

    decided: bool
    step: Step | None


def decide_one(torrent: Torrent, config: Config, inputs: Inputs) -> Verdict:
    columns = columns_for([torrent], config.names(), inputs)
    missing = missing_names(columns)
    for rule in config.rules:
        hits, unsure = select_sure(rule.when, columns, [0], missing)
        if unsure:
            return Verdict(True, None)
        if hits:
            steps = [] if rule.action is Action.KEEP else steps_for(rule, [torrent], columns, hits)
            return Verdict(True, steps[0] if steps else None)
    return Verdict(False, None)


def steps_for(
    rule: Rule, torrents: Sequence[Torrent], columns: Columns, hits: list[int]
) -> list[Step]:
    """The steps for the torrents `rule` decides, unless already done.

    Built a field at a time (`frozen_batch`), in C, rather than a Python call per
    step: a first poll over a large library decides thousands at once.
    """
    done = _ALREADY_DONE[rule.action]
    if done is not None:
        hits = [i for i in hits if not done(torrents[i], rule.target)]
    # One Decision (action, rule, names, target) for all the steps of the rule;
    # per step only its values, in the order of the names, taken from the columns
    # (the same objects, no copy).
    names = tuple(sorted(rule.when.names))
    read = [map(columns[n].__getitem__, hits) for n in names]
    picked = list(map(torrents.__getitem__, hits))
    fields = {
        "hash": map(_HASH, picked),
        "name": map(_NAME, picked),
        "decision": repeat(Decision(rule.action, rule.name, names, rule.target)),
        "values": zip(*read, strict=True) if names else repeat(()),
        "size": map(_SIZE, picked),
    }
    return frozen_batch(Step, len(hits), fields)
