"""Free-space policies applied to a snapshot: among the torrents no rule decided,
each low policy picks deletions in its order until its projection reaches the target
(`space.project` does the accounting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rtorrentd.config.model import Action, SpacePolicy
from rtorrentd.engine import facts, space
from rtorrentd.engine.derived import Inputs
from rtorrentd.engine.model import Columns, Decision, Step
from rtorrentd.engine.rules import Decided, missing_names, select_sure
from rtorrentd.engine.space import Disk, SpaceOutcome
from rtorrentd.torrent import Torrent


@dataclass(frozen=True, slots=True)
class SpaceContext:
    torrents: Sequence[Torrent]
    columns: Columns
    decided: Decided
    disk: Disk
    inputs: Inputs
    limit: int | None


def plan_space(
    ctx: SpaceContext, policies: Sequence[SpacePolicy]
) -> tuple[list[Step], tuple[SpaceOutcome, ...], list[str]]:
    """Each low policy in turn, among the torrents no rule decided. Policies on one
    filesystem share its accounting: what one frees, the next starts from."""
    by_path = facts.listers(ctx.inputs.files)
    freeings: dict[int, facts.Freeing] = {}
    gained: dict[int, int] = {}
    taken: set[int] = set()
    emptied: set[str] = set()
    steps: list[Step] = []
    outcomes: list[SpaceOutcome] = []
    missing: list[str] = []
    for policy in policies:
        fs = ctx.disk.filesystems[policy.path]
        first = fs.device not in freeings
        freeing = freeings.setdefault(fs.device, facts.Freeing(ctx.inputs.files, by_path))
        start = fs.free + gained.get(fs.device, 0)
        binned = [b for b in ctx.disk.bin if b.device == fs.device and b.name not in emptied]
        walk = space.Walk(policy, start, ctx.inputs.files, freeing, ctx.limit, binned)
        on_fs = [i for i in ctx.decided.undecided if i not in taken and _on(ctx, i, fs.device)]
        # An unsure candidate (its files unread) joins the walk like any other: the
        # projection needs a candidate's files anyway, and reads them in order.
        sure, unsure = select_sure(
            policy.candidates, ctx.columns, on_fs, missing_names(ctx.columns)
        )
        candidates = space.ordered(sorted(sure + unsure), ctx.columns, policy.order)
        # The rule deletions on this filesystem count as freed, once per filesystem.
        rule_deleted = _rule_deletions(ctx, fs.device) if first else []
        hashes = [ctx.torrents[i].hash for i in candidates]
        projection = space.project(walk, rule_deleted, hashes)
        picked = _space_steps(ctx, policy, candidates, dict(projection.picks))
        picked_hashes = {step.hash for step in picked}
        taken.update(i for i in candidates if ctx.torrents[i].hash in picked_hashes)
        emptied.update(projection.outcome.emptied)
        steps += picked
        outcomes.append(projection.outcome)
        missing += projection.missing
        gained[fs.device] = projection.outcome.projected - fs.free
    return steps, tuple(outcomes), missing


def _on(ctx: SpaceContext, index: int, device: int) -> bool:
    return ctx.disk.devices.get(ctx.torrents[index].hash) == device


def _rule_deletions(ctx: SpaceContext, device: int) -> list[str]:
    devices = ctx.disk.devices
    return [
        s.hash
        for s in ctx.decided.steps
        if s.action is Action.DELETE and devices.get(s.hash) == device
    ]


def _space_steps(
    ctx: SpaceContext, policy: SpacePolicy, candidates: Sequence[int], frees: Mapping[str, int]
) -> list[Step]:
    """A delete step per pick, in order, showing what ranked it and what it frees."""
    read = sorted(policy.candidates.names | {key.name for key in policy.order})
    # One decision for all the policy's steps.
    decision = Decision(policy.action, space.rule_name(policy), (*read, "frees"))
    steps = []
    for i in candidates:
        torrent = ctx.torrents[i]
        if torrent.hash in frees:
            values = (*(ctx.columns[n][i] for n in read), frees[torrent.hash])
            steps.append(Step(torrent.hash, torrent.name, decision, values, torrent.size))
    return steps
