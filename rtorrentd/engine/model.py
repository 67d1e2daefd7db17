"""What the engine decides: a `Step` per torrent acted on, the whole `Plan`, and
which files it still `Wanted` read. Frozen data, shared by every engine module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtorrentd.config.model import Action
from rtorrentd.engine.space import SpaceOutcome


@dataclass(frozen=True, slots=True)
class Decision:
    """What every step of one rule shares: the action, the rule, the names its
    condition read (in the order of a step's `values`), and the target that
    relabel and throttle set (the rule's label or group)."""

    action: Action
    rule: str
    names: tuple[str, ...] = ()
    target: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """One action for one torrent, with why: its `decision` (the rule and what it
    read, shared by every step of that rule) and the values its condition read
    (`values`, in the order of the decision's `names`); `why` pairs them.

    Why the shared part is apart: a first poll may decide 100,000 torrents, and a
    slot each for the action, rule, names and target was 3 MiB of the plan's peak
    (and a (name, value) tuple per value per step 5 MiB before that).
    """

    hash: str
    name: str
    decision: Decision
    values: tuple[object, ...]
    size: int | None

    @property
    def action(self) -> Action:
        """What to do: the decision's action."""
        return self.decision.action

    @property
    def rule(self) -> str:
        """The rule (or space policy) that decided."""
        return self.decision.rule

    @property
    def names(self) -> tuple[str, ...]:
        """The names the rule's condition read, in the order of `values`."""
        return self.decision.names

    @property
    def target(self) -> str:
        """What relabel and throttle set; "" for the other actions."""
        return self.decision.target

    @property
    def why(self) -> tuple[tuple[str, object], ...]:
        """Each name the condition read with its value: `(("ratio", 2.1), ...)`."""
        return tuple(zip(self.decision.names, self.values, strict=True))


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


# One list per name, index-aligned with the snapshot (None = unknown).
Columns = dict[str, Sequence[object]]
