"""What the engine decides: a `Step` per torrent acted on, the whole `Plan`, and
which files it still `Wanted` read. Frozen data, shared by every engine module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtorrentd.config.model import Action
from rtorrentd.engine.space import SpaceOutcome


@dataclass(frozen=True, slots=True)
class Step:
    """One action for one torrent, with why: the rule, and the values its condition
    read (`values`) of the names in `names`, in that order; `why` pairs them.

    The names are apart from the values because the steps of one rule share one
    `names` tuple: a first poll may decide 100,000 torrents, and a (name, value)
    tuple per value per step was 5 MiB of the plan's peak.
    """

    hash: str
    name: str
    action: Action
    rule: str
    names: tuple[str, ...]
    values: tuple[object, ...]
    size: int | None
    target: str = ""  # what relabel and throttle set (the rule's label or group)

    @property
    def why(self) -> tuple[tuple[str, object], ...]:
        """Each name the condition read with its value: `(("ratio", 2.1), ...)`."""
        return tuple(zip(self.names, self.values, strict=True))


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
