"""A `Seen` holds only the fields not at their default, and behaves as the plain
frozen dataclass it was: equal, hashed, repr'd, replaced, copied and pickled alike."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtorrentd.engine.memory import Memory, Samples, Seen, remember
from rtorrentd.engine.times import Times
from rtorrentd.torrent import Torrent

TIMES = Times(0.0, 0.0, None, 100.0, 100.0, 0)
FULL = Seen(100.0, 5, 150.0, "down", 120.0, (100, 0, 150, 5), TIMES, "0,0,0,100,5")


@dataclass(frozen=True, slots=True)
class Plain:
    """What `Seen` was: every field in a slot. The reference for its behaviour."""

    first_seen: float
    uploaded: int | None = None
    grew_at: float | None = None
    message: str | None = None
    message_since: float | None = None
    samples: Samples = ()
    times: Times | None = None
    saved: str | None = None


def _values(seen: Seen | Plain) -> tuple[object, ...]:
    return tuple(_fields_of(seen).values())


def _fields_of(seen: Seen | Plain) -> dict[str, Any]:
    """Each field's value (dataclasses.asdict would turn `times` into a dict too)."""
    return {f.name: getattr(seen, f.name) for f in dataclasses.fields(seen)}


def test_a_seen_holds_only_its_other_than_default_fields() -> None:
    fresh = Seen(100.0, 5, times=TIMES, saved="")
    assert (None, None, None, ()) == (
        fresh.grew_at,
        fresh.message,
        fresh.message_since,
        fresh.samples,
    )
    assert (100.0, 5, TIMES, "") == (fresh.first_seen, fresh.uploaded, fresh.times, fresh.saved)
    # Smaller: a slot for each field held, none for the others.
    assert sys.getsizeof(fresh) < sys.getsizeof(FULL)
    assert isinstance(fresh, Seen) and isinstance(FULL, Seen)


def test_seen_is_frozen_whichever_fields_it_holds() -> None:
    fresh = Seen(100.0, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fresh.uploaded = 6  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fresh.message = "down"  # type: ignore[misc]


def test_replace_copy_and_pickle_give_an_equal_seen() -> None:
    assert dataclasses.replace(FULL, grew_at=None, samples=(), saved=None) == Seen(
        100.0, 5, None, "down", 120.0, (), TIMES, None
    )
    assert dataclasses.replace(Seen(100.0), uploaded=5, times=TIMES).times is TIMES
    for seen in (FULL, Seen(100.0), Seen(100.0, 5, times=TIMES)):
        assert seen == copy.copy(seen) == copy.deepcopy(seen) == pickle.loads(pickle.dumps(seen))
        assert dataclasses.astuple(seen) == dataclasses.astuple(pickle.loads(pickle.dumps(seen)))


def test_a_seen_is_no_other_object() -> None:
    assert Seen(100.0) != Plain(100.0)
    assert Seen(100.0) != (100.0, None, None, None, None, (), None, None)


def test_a_torrent_first_seen_now_holds_what_it_was_given() -> None:
    """A first poll's Seen is smaller than one holding every field, and equal to
    the Seen built from the same values."""
    torrent = Torrent(hash="A" * 40, name="a", complete=True, started=True, active=True)
    memory = remember(Memory(), [dataclasses.replace(torrent, uploaded=5)], 100.0, cap=600.0)
    seen = memory.seen["A" * 40]
    assert seen == Seen(100.0, 5, times=seen.times)
    assert seen.times is not None and seen.times.since == 100.0
    assert sys.getsizeof(seen) < sys.getsizeof(FULL)


_floats = st.one_of(st.none(), st.sampled_from([0.0, 1.5, 100.0]))
_fields = st.tuples(
    st.sampled_from([0.0, 100.0]),
    st.one_of(st.none(), st.sampled_from([0, 5])),
    _floats,
    st.one_of(st.none(), st.sampled_from(["", "down"])),
    _floats,
    st.sampled_from([(), (100, 0, 150, 5)]),
    st.one_of(st.none(), st.just(TIMES)),
    st.one_of(st.none(), st.sampled_from(["", "0,0,0,100,5"])),
)


@given(_fields, _fields)
def test_seen_behaves_as_the_plain_dataclass(a: tuple[object, ...], b: tuple[object, ...]) -> None:
    seen_a, seen_b = Seen(*a), Seen(*b)  # type: ignore[arg-type]
    plain_a, plain_b = Plain(*a), Plain(*b)  # type: ignore[arg-type]
    assert _values(seen_a) == _values(plain_a)
    assert repr(seen_a) == repr(plain_a).replace("Plain(", "Seen(", 1)
    assert (seen_a == seen_b) == (plain_a == plain_b)
    assert (seen_a != seen_b) == (plain_a != plain_b)
    assert hash(seen_a) == hash(plain_a)
    assert seen_a == Seen(**_fields_of(plain_a))
    changed = dataclasses.replace(seen_a, **_fields_of(plain_b))
    assert changed == seen_b and hash(changed) == hash(seen_b)
