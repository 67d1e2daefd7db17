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

from collections.abc import Sequence
from dataclasses import dataclass

from rtorrentd.config.model import Config, SpacePolicy
from rtorrentd.engine import space
from rtorrentd.engine.derived import Inputs
from rtorrentd.engine.facts import Files
from rtorrentd.engine.memory import Memory
from rtorrentd.engine.model import Decision, Plan, Step, Wanted
from rtorrentd.engine.policies import SpaceContext, plan_space
from rtorrentd.engine.rules import build_columns, columns_for, decide_one, decide_rules, split_names
from rtorrentd.engine.space import Disk, SpaceOutcome
from rtorrentd.engine.valves import apply_safety
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import DERIVED, IDENTITY

# The engine's interface; Plan and Step are re-exported for the layers above.
__all__ = [
    "FIRST_BATCH",
    "Decision",
    "Plan",
    "Step",
    "Wanted",
    "build_columns",
    "fetch_names",
    "files_wanted",
    "plan",
    "recheck",
]

# Steps of a first `files_wanted` round for space candidates; doubled each round,
# so a large library needs few rounds (each one re-plans the whole snapshot).
FIRST_BATCH = 64


def fetch_names(config: Config) -> frozenset[str]:
    """The table fields the client must fetch for `config`: the fields its rules
    reference, those its derived names are computed from, and `IDENTITY`; with
    space policies, where each torrent's data is."""
    table, derived = split_names(config.names())
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
    steps, held, notes = apply_safety(evaluated.steps, len(torrents), config.safety)
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
    verdict = decide_one(torrent, config, inputs)
    if verdict.decided:
        again = verdict.step
        return again is not None and (again.action, again.rule) == (step.action, step.rule)
    policy = _policy_named(config, step.rule)
    if policy is None or step.action is not policy.action:
        return False
    columns = columns_for([torrent], policy.candidates.names, inputs)
    return bool(policy.candidates.select(columns, [0]))


def _policy_named(config: Config, rule: str) -> SpacePolicy | None:
    return next((p for p in config.space if space.rule_name(p) == rule), None)


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
    columns = columns_for(torrents, config.names(), inputs)
    low = [p for p in config.space if space.is_low(p, disk)]
    decided = decide_rules(torrents, columns, config.rules, rest=bool(low))
    missing = [torrents[i].hash for i in decided.unsure]
    if disk is None or not low:
        return _Evaluated(decided.steps, (), missing)
    ctx = SpaceContext(torrents, columns, decided, disk, inputs, limit)
    steps, outcomes, needed = plan_space(ctx, low)
    return _Evaluated(decided.steps + steps, outcomes, missing + needed)
