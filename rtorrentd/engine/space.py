"""Free-space policies, pure: which candidates to delete, in order, to reach a target.

The edge measures the disk (`rtorrentd.deletion.disk`): free bytes and device of each
policy's path, and the device each torrent's data is on. The engine hands this
module the candidates of one policy, already filtered by its `candidates`
condition and by the rules (a torrent a rule decided is never a candidate), in
the policy's `order`. `project` walks them, counting the bytes each deletion
really frees (`facts.Freeing`: hard links and files shared with a torrent that
stays free nothing), passes over those that free nothing, and stops as soon as
the projected free space reaches `target_free`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rtorrentd.config.model import OrderKey, SpacePolicy
from rtorrentd.engine.facts import Files, Freeing


@dataclass(frozen=True, slots=True)
class Filesystem:
    """One policy's filesystem as measured: bytes free for use (statvfs
    `f_bavail * f_frsize`) and its device (`st_dev` of the policy's path)."""

    free: int
    device: int


@dataclass(frozen=True, slots=True)
class Binned:
    """One recycle-bin entry as the edge read it: its name, its filesystem, and the
    bytes emptying it frees."""

    name: str
    device: int
    frees: int


@dataclass(frozen=True, slots=True)
class Disk:
    """What the edge measured for one poll.

    `filesystems` by policy path (a path that could not be measured is absent);
    `devices` by info-hash: the device of the directory holding the torrent's data;
    `bin`: the recycle bin's entries, oldest first (emptied before any deletion).
    """

    filesystems: Mapping[str, Filesystem]
    devices: Mapping[str, int]
    bin: tuple[Binned, ...] = ()


@dataclass(frozen=True, slots=True)
class SpaceOutcome:
    """What one policy below its `min_free` decided: from `free` to `projected`
    bytes, `rule_freed` of it by rule deletions, the rest by `deletions` steps;
    `passed_over` candidates would have freed nothing."""

    path: str
    free: int
    min_free: int
    target_free: int
    rule_freed: int
    deletions: int
    projected: int
    passed_over: int
    bin_freed: int = 0  # of it, by emptying the recycle bin's `emptied` entries
    emptied: tuple[str, ...] = ()

    @property
    def short(self) -> bool:
        """The candidates ran out before the target was reached."""
        return self.projected < self.target_free


@dataclass(frozen=True, slots=True)
class Projection:
    """The walk over one policy's candidates: each pick with the bytes it frees,
    the outcome, and the hashes whose files it needed but did not have."""

    picks: tuple[tuple[str, int], ...]
    outcome: SpaceOutcome
    missing: tuple[str, ...]


def rule_name(policy: SpacePolicy) -> str:
    """What a space step shows as its rule: `space /data`."""
    return f"space {policy.path}"


def is_low(policy: SpacePolicy, disk: Disk | None) -> bool:
    """Whether the policy's filesystem was measured and is below `min_free`."""
    fs = None if disk is None else disk.filesystems.get(policy.path)
    return fs is not None and fs.free < policy.min_free


def ordered(
    indices: Sequence[int], columns: Mapping[str, Sequence[object]], keys: Sequence[OrderKey]
) -> list[int]:
    """`indices` sorted by `keys`, the first key deciding first; an unknown value
    sorts last in either direction, ties keep snapshot order."""
    result = list(indices)
    for key in reversed(keys):  # stable sorts, least significant key first
        column = columns[key.name]
        sign = -1 if key.descending else 1
        result.sort(key=lambda i: _sort_value(column[i], sign))
    return result


def _sort_value(value: object, sign: int) -> tuple[bool, float]:
    if isinstance(value, int | float):
        return (False, sign * value)
    return (True, 0.0)


@dataclass(frozen=True, slots=True)
class Walk:
    """One policy's inputs besides its candidates."""

    policy: SpacePolicy
    free: int
    files: Files
    freeing: Freeing  # shared by the policies of one filesystem
    limit: int | None = None  # stop after this many missing (None: never)
    bin: Sequence[Binned] = ()  # the bin's entries on this filesystem, oldest first


def project(walk: Walk, rule_deleted: Sequence[str], candidates: Sequence[str]) -> Projection:
    """Count the rule deletions as freed, then empty the bin's entries, oldest
    first, then pick candidates, each only while the target is not reached: data
    already given up goes before any torrent that still seeds."""
    missing = [h for h in rule_deleted if h not in walk.files]
    rule_freed = sum(walk.freeing.add(h) for h in rule_deleted if h in walk.files)
    free = walk.free + rule_freed
    emptied: list[str] = []
    for entry in walk.bin:
        if free >= walk.policy.target_free:
            break
        emptied.append(entry.name)
        free += entry.frees
    bin_freed = free - walk.free - rule_freed
    picks: list[tuple[str, int]] = []
    passed = 0
    for info_hash in candidates:
        if free >= walk.policy.target_free or _enough(missing, walk.limit):
            break
        if info_hash not in walk.files:
            missing.append(info_hash)
            continue
        if walk.freeing.gain(info_hash) == 0:
            passed += 1  # all hard-linked or shared: deleting it would free nothing
            continue
        freed = walk.freeing.add(info_hash)
        picks.append((info_hash, freed))
        free += freed
    outcome = _outcome(walk, rule_freed, len(picks), free, passed)
    outcome = replace(outcome, bin_freed=bin_freed, emptied=tuple(emptied))
    return Projection(tuple(picks), outcome, tuple(missing))


def _enough(missing: Sequence[str], limit: int | None) -> bool:
    return limit is not None and len(missing) >= limit


def _outcome(walk: Walk, rule_freed: int, deletions: int, free: int, passed: int) -> SpaceOutcome:
    policy = walk.policy
    return SpaceOutcome(
        policy.path,
        walk.free,
        policy.min_free,
        policy.target_free,
        rule_freed,
        deletions,
        free,
        passed,
    )
