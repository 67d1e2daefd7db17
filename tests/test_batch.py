"""Building frozen dataclasses a field at a time gives what the constructor gives."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from rtorrentd.batch import frozen_batch
from rtorrentd.engine.plan import Step
from rtorrentd.torrent import NAMES, Torrent, holding


@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: str = "r"


def test_instances_equal_the_constructors() -> None:
    built = frozen_batch(Pair, 3, {"left": [1, 2, 3], "right": iter("abc")})
    assert [Pair(1, "a"), Pair(2, "b"), Pair(3, "c")] == built


def test_a_missing_field_takes_its_default() -> None:
    assert [Pair(7), Pair(8)] == frozen_batch(Pair, 2, {"left": [7, 8]})


def test_the_instances_stay_frozen() -> None:
    [pair] = frozen_batch(Pair, 1, {"left": [1]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.left = 2  # type: ignore[misc]


def test_a_missing_field_without_default_is_refused() -> None:
    with pytest.raises(TypeError, match="no values for left"):
        frozen_batch(Pair, 1, {"right": ["x"]})


@dataclass(frozen=True, slots=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class Listed:
    items: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Mutable:
    value: int


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (Checked, "__post_init__"),
        (Listed, "cannot fill"),
        (Mutable, "not a frozen dataclass"),
        (int, "not a frozen dataclass"),
    ],
)
def test_classes_whose_init_does_more_are_refused(cls: type, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        frozen_batch(cls, 1, {"value": [1]})


@pytest.mark.parametrize("cls", [holding(frozenset(NAMES)), holding(frozenset()), Step])
def test_the_classes_built_this_way_qualify(cls: type) -> None:
    # torrents_from_rows (a Torrent holding the fields fetched) and the engine's
    # steps rely on this.
    required = {f.name: ["x"] for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    assert 1 == len(frozen_batch(cls, 1, required))


def test_a_torrent_is_built_holding_some_fields_and_equals_the_constructors() -> None:
    kind = holding(frozenset({"ratio", "label"}))
    built = frozen_batch(kind, 2, {"hash": ["A", "B"], "name": ["a", "b"], "ratio": [1.0, None]})
    assert [Torrent("A", "a", ratio=1.0), Torrent("B", "b")] == built
    assert [None, None] == [t.label for t in built]  # not given: its default
    with pytest.raises(TypeError, match="size is no slot"):
        frozen_batch(kind, 1, {"hash": ["A"], "name": ["a"], "size": [1]})
    with pytest.raises(TypeError, match="nonsense is no slot nor a field"):
        frozen_batch(kind, 1, {"hash": ["A"], "name": ["a"], "nonsense": [1]})
