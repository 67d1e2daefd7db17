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

Two phases for the expensive names (`hardlinked`, `shared`: a file list and a
stat per file): the edge first asks `files_wanted`, which evaluates each
condition that reads them with every combination of True and False in place of
the facts it lacks; where all combinations agree the torrent is decided without
its files, elsewhere it is "unsure" and its files are wanted. The same goes for
the candidates of a free-space policy below its `min_free`, whose projection
needs the files of the candidates it walks (`space.project`). Once the edge has
read those, `plan` runs with them. A torrent still unsure in `plan` (its files
could not be read) gets no step from that rule or any later one, nor from a
space policy: not knowing is never a reason to act.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product, repeat
from operator import attrgetter

from rtorrentd.batch import frozen_batch
from rtorrentd.conditions.parse import Condition
from rtorrentd.config.model import Action, Config, Rule, Safety, SpacePolicy
from rtorrentd.engine import facts, space
from rtorrentd.engine.derived import DERIVED_COLUMNS, Inputs
from rtorrentd.engine.facts import Files
from rtorrentd.engine.memory import WEEK, Memory
from rtorrentd.engine.space import Disk, SpaceOutcome
from rtorrentd.errors import ConfigError
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import DERIVED, EXPENSIVE, FIELDS, IDENTITY


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

    `steps` are to be carried out, in rule order then snapshot order, space
    policies' deletions last; `held` are steps a safety valve held back this
    poll, and `notes` say why. `kept` counts the torrents with no step at all, so
    deletes + removes + stops + held + kept = total. `space` has one outcome per
    free-space policy whose filesystem was below its `min_free`.
    """

    steps: tuple[Step, ...]
    held: tuple[Step, ...]
    notes: tuple[str, ...]
    total: int
    kept: int
    space: tuple[SpaceOutcome, ...] = ()


@dataclass(frozen=True, slots=True)
class Wanted:
    """The torrents whose files `plan` needs read (`hashes`), and whether the
    torrents that could share a file with them must be read too (`sharers`:
    `shared` is used, or a space projection must know what stays)."""

    hashes: tuple[str, ...]
    sharers: bool


Columns = dict[str, Sequence[object]]


# Steps of a first `files_wanted` round for space candidates; doubled each round,
# so a large library needs few rounds (each one re-plans the whole snapshot).
FIRST_BATCH = 64


def fetch_names(config: Config) -> frozenset[str]:
    """The table fields the client must fetch for `config`: the fields its rules
    reference, those its derived names are computed from, and `IDENTITY`; with
    space policies, where each torrent's data is."""
    table, derived = _split_names(config.names())
    needed = {need for name in derived for need in DERIVED[name].needs}
    located = {"path", "directory"} if config.space else set()
    return frozenset(IDENTITY) | table | needed | located


def plan(
    torrents: Sequence[Torrent],
    config: Config,
    now: float,
    memory: Memory,
    *,
    disk: Disk | None = None,
    files: Files | None = None,
) -> Plan:
    """Decide what to do with each torrent of one snapshot taken at `now`.

    `memory` should already include this snapshot (`remember(memory, torrents, now)`);
    a torrent it does not know counts as first seen at `now`. Rules are tried in
    order and the first whose condition holds decides; a `keep` decides too, with
    no step. Then each space policy whose filesystem `disk` shows below `min_free`
    deletes among the torrents no rule decided, and the safety valves of
    `config.safety` may hold steps back. `files` are the file facts the edge read
    for the torrents `files_wanted` named (without them, `hardlinked` and `shared`
    are unknown and space projections count nothing freed).
    """
    inputs = Inputs(now, memory, config.daemon.window, files or {})
    evaluated = _evaluate(torrents, config, inputs, disk, None)
    steps, held, notes = _apply_safety(evaluated.steps, len(torrents), config.safety)
    kept = len(torrents) - len(steps) - len(held)
    return Plan(steps, held, notes, len(torrents), kept, evaluated.space)


def files_wanted(
    torrents: Sequence[Torrent],
    config: Config,
    now: float,
    memory: Memory,
    *,
    disk: Disk | None = None,
    files: Files | None = None,
    limit: int = FIRST_BATCH,
) -> Wanted:
    """Whose files `plan` still needs, given those already read: the torrents a
    rule or candidates condition cannot judge without `hardlinked`/`shared`, the
    rule deletions a low filesystem counts as freed, and space candidates in
    order (at most `limit` of them per policy) until the projection would reach
    the target. Empty when nothing more is needed: then `plan`."""
    inputs = Inputs(now, memory, config.daemon.window, files or {})
    evaluated = _evaluate(torrents, config, inputs, disk, limit)
    wanted = tuple(dict.fromkeys(h for h in evaluated.missing if h not in inputs.files))
    low = any(space.is_low(policy, disk) for policy in config.space)
    return Wanted(wanted, "shared" in config.names() or low)


def recheck(
    torrent: Torrent,
    step: Step,
    config: Config,
    now: float,
    memory: Memory,
    *,
    files: Files | None = None,
) -> bool:
    """Whether fresh values for `torrent` still give it `step`: the same rule and
    action, or, for a space step, no rule deciding it and the policy's
    `candidates` still holding. (Whether space is still short is not asked
    again: the plan stopped at the target.)"""
    inputs = Inputs(now, memory, config.daemon.window, files or {})
    verdict = _decide_one(torrent, config, inputs)
    if verdict.decided:
        again = verdict.step
        return again is not None and (again.action, again.rule) == (step.action, step.rule)
    policy = _policy_named(config, step.rule)
    if policy is None or step.action is not policy.action:
        return False
    columns = _columns([torrent], policy.candidates.names, inputs)
    return bool(policy.candidates.select(columns, [0]))


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
    return _columns(torrents, names, Inputs(now, memory, window, files or {}))


def _columns(torrents: Sequence[Torrent], names: frozenset[str], inputs: Inputs) -> Columns:
    table, derived = _split_names(names)
    columns: Columns = {name: list(map(attrgetter(name), torrents)) for name in sorted(table)}
    for name in sorted(derived):
        columns[name] = DERIVED_COLUMNS[name](torrents, inputs)
    return columns


def _split_names(names: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    unknown = names - FIELDS.keys() - DERIVED.keys()
    if unknown:
        raise ConfigError(f"unknown name(s) in conditions: {', '.join(sorted(unknown))}")
    return names & FIELDS.keys(), names & DERIVED.keys()


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


@dataclass(frozen=True, slots=True)
class _Decided:
    """What the rules decided: steps; the torrents no rule decided (`undecided`,
    computed only when asked); those a rule could not judge without their files."""

    steps: list[Step]
    undecided: list[int]
    unsure: list[int]


def _decide(
    torrents: Sequence[Torrent], columns: Columns, rules: Sequence[Rule], *, rest: bool = False
) -> _Decided:
    """Steps in rule order, then snapshot order; each torrent decided by one rule.
    An unsure torrent is decided with no step: no later rule may act on a guess."""
    steps: list[Step] = []
    unsure_all: list[int] = []
    missing = _missing_names(columns)
    # The torrents no rule has decided yet, in snapshot order; a list, because
    # iterating a range makes a new int per torrent in every scan.
    pending = list(range(len(torrents)))
    # Decided since `pending` was last rebuilt. Rebuilding costs a pass over every
    # pending torrent, which a rule that takes a handful (the usual case once a
    # library is settled) does not repay: later rules just skip these.
    stale: set[int] = set()
    for rule in rules:
        hits, unsure = _select(rule.when, columns, pending, missing)
        if stale:
            hits = [i for i in hits if i not in stale]
            unsure = [i for i in unsure if i not in stale]
        if unsure:
            unsure_all += unsure
            stale.update(unsure)
        if not hits:
            continue
        if rule.action is not Action.KEEP:
            steps += _steps_for(rule, torrents, columns, hits)
        stale.update(hits)
        if 8 * len(stale) > len(pending):
            pending = [i for i in pending if i not in stale]
            stale = set()
    undecided = [i for i in pending if i not in stale] if rest else []
    return _Decided(steps, undecided, unsure_all)


def _missing_names(columns: Columns) -> frozenset[str]:
    """The expensive names whose facts some torrent lacks (its files were not read)."""
    return frozenset(n for n in EXPENSIVE if n in columns and None in columns[n])


def _select(
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
class _Verdict:
    """One torrent under the rules: `decided` by a rule (or unsure), with its step."""

    decided: bool
    step: Step | None


def _decide_one(torrent: Torrent, config: Config, inputs: Inputs) -> _Verdict:
    columns = _columns([torrent], config.names(), inputs)
    missing = _missing_names(columns)
    for rule in config.rules:
        hits, unsure = _select(rule.when, columns, [0], missing)
        if unsure:
            return _Verdict(True, None)
        if hits:
            steps = [] if rule.action is Action.KEEP else _steps_for(rule, [torrent], columns, hits)
            return _Verdict(True, steps[0] if steps else None)
    return _Verdict(False, None)


def _policy_named(config: Config, rule: str) -> SpacePolicy | None:
    return next((p for p in config.space if space.rule_name(p) == rule), None)


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


# --- the whole snapshot: rules, then space policies ------------------------------


@dataclass(frozen=True, slots=True)
class _Evaluated:
    steps: list[Step]
    space: tuple[SpaceOutcome, ...]
    missing: list[str]  # info-hashes whose files would settle something


def _evaluate(
    torrents: Sequence[Torrent],
    config: Config,
    inputs: Inputs,
    disk: Disk | None,
    limit: int | None,
) -> _Evaluated:
    columns = _columns(torrents, config.names(), inputs)
    low = [p for p in config.space if space.is_low(p, disk)]
    decided = _decide(torrents, columns, config.rules, rest=bool(low))
    missing = [torrents[i].hash for i in decided.unsure]
    if disk is None or not low:
        return _Evaluated(decided.steps, (), missing)
    ctx = _SpaceContext(torrents, columns, decided, disk, inputs, limit)
    steps, outcomes, needed = _plan_space(ctx, low)
    return _Evaluated(decided.steps + steps, outcomes, missing + needed)


@dataclass(frozen=True, slots=True)
class _SpaceContext:
    torrents: Sequence[Torrent]
    columns: Columns
    decided: _Decided
    disk: Disk
    inputs: Inputs
    limit: int | None


def _plan_space(
    ctx: _SpaceContext, policies: Sequence[SpacePolicy]
) -> tuple[list[Step], tuple[SpaceOutcome, ...], list[str]]:
    """Each low policy in turn, among the torrents no rule decided. Policies on one
    filesystem share its accounting: what one frees, the next starts from."""
    by_path = facts.listers(ctx.inputs.files)
    freeings: dict[int, facts.Freeing] = {}
    gained: dict[int, int] = {}
    taken: set[int] = set()
    steps: list[Step] = []
    outcomes: list[SpaceOutcome] = []
    missing: list[str] = []
    for policy in policies:
        fs = ctx.disk.filesystems[policy.path]
        first = fs.device not in freeings
        freeing = freeings.setdefault(fs.device, facts.Freeing(ctx.inputs.files, by_path))
        start = fs.free + gained.get(fs.device, 0)
        walk = space.Walk(policy, start, ctx.inputs.files, freeing, ctx.limit)
        on_fs = [i for i in ctx.decided.undecided if i not in taken and _on(ctx, i, fs.device)]
        # An unsure candidate (its files unread) joins the walk like any other: the
        # projection needs a candidate's files anyway, and reads them in order.
        sure, unsure = _select(policy.candidates, ctx.columns, on_fs, _missing_names(ctx.columns))
        candidates = space.ordered(sorted(sure + unsure), ctx.columns, policy.order)
        # The rule deletions on this filesystem count as freed, once per filesystem.
        rule_deleted = _rule_deletions(ctx, fs.device) if first else []
        hashes = [ctx.torrents[i].hash for i in candidates]
        projection = space.project(walk, rule_deleted, hashes)
        picked = _space_steps(ctx, policy, candidates, dict(projection.picks))
        picked_hashes = {step.hash for step in picked}
        taken.update(i for i in candidates if ctx.torrents[i].hash in picked_hashes)
        steps += picked
        outcomes.append(projection.outcome)
        missing += projection.missing
        gained[fs.device] = projection.outcome.projected - fs.free
    return steps, tuple(outcomes), missing


def _on(ctx: _SpaceContext, index: int, device: int) -> bool:
    return ctx.disk.devices.get(ctx.torrents[index].hash) == device


def _rule_deletions(ctx: _SpaceContext, device: int) -> list[str]:
    devices = ctx.disk.devices
    return [
        s.hash
        for s in ctx.decided.steps
        if s.action is Action.DELETE and devices.get(s.hash) == device
    ]


def _space_steps(
    ctx: _SpaceContext, policy: SpacePolicy, candidates: Sequence[int], frees: Mapping[str, int]
) -> list[Step]:
    """A delete step per pick, in order, showing what ranked it and what it frees."""
    names = sorted(policy.candidates.names | {key.name for key in policy.order})
    rule = space.rule_name(policy)
    steps = []
    for i in candidates:
        torrent = ctx.torrents[i]
        if torrent.hash in frees:
            values = tuple((n, ctx.columns[n][i]) for n in names)
            values += (("frees", frees[torrent.hash]),)
            steps.append(
                Step(torrent.hash, torrent.name, policy.action, rule, values, torrent.size)
            )
    return steps


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
