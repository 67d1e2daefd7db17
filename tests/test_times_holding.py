"""A `Times` holds only the figures other than ZERO, None and IDLE, and behaves as
the plain frozen dataclass it was: equal, hashed, repr'd, replaced, copied and
pickled alike."""

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

from rtorrentd.engine import times
from rtorrentd.engine.times import IDLE, LEECHING, SEEDING, ZERO, Times

FULL = Times(3600.0, 60.0, 50.0, 100.0, 200.0, SEEDING, 150.0)


@dataclass(frozen=True, slots=True)
class Plain:
    """What `Times` was: every figure in a slot. The reference for its behaviour."""

    seed: float
    leech: float
    last_upload: float | None
    since: float
    polled: float
    state: int
    saved_at: float = 0.0


def _fields_of(figures: Times | Plain) -> dict[str, Any]:
    return {f.name: getattr(figures, f.name) for f in dataclasses.fields(figures)}


def test_a_times_holds_only_its_figures_other_than_zero_none_and_idle() -> None:
    stopped = Times(ZERO, ZERO, None, 100.0, 200.0, IDLE, 200.0)
    assert (0.0, 0.0, None, IDLE) == (
        stopped.seed,
        stopped.leech,
        stopped.last_upload,
        stopped.state,
    )
    assert (100.0, 200.0, 200.0) == (stopped.since, stopped.polled, stopped.saved_at)
    assert sys.getsizeof(stopped) < sys.getsizeof(FULL)
    assert stopped == Times(0.0, 0.0, None, 100.0, 200.0, IDLE, 200.0)
    assert not stopped.due


def test_a_record_read_and_advanced_keeps_its_zero_figures_out_of_slots() -> None:
    """A torrent never leeched (complete when first seen) holds no leech time, its
    record read back nor a poll later."""
    found = times.parse_record("7200,0,0,100,5")
    assert found is not None
    figures = Times(found.seed, found.leech, None, found.since, 200.0, SEEDING, 200.0)
    later = times.advance(figures, SEEDING, 500.0, 600.0, None)
    assert (7500.0, 0.0, 500.0) == (later.seed, later.leech, later.polled)
    assert sys.getsizeof(later) < sys.getsizeof(FULL)


def test_times_is_frozen_whichever_figures_it_holds() -> None:
    stopped = Times(ZERO, ZERO, None, 100.0, 200.0, IDLE)
    for name, value in (("seed", 1.0), ("since", 1.0), ("state", SEEDING)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(stopped, name, value)


def test_replace_copy_and_pickle_give_equal_times() -> None:
    stopped = Times(ZERO, ZERO, None, 100.0, 200.0, IDLE)
    assert dataclasses.replace(stopped, saved_at=200.0).saved_at == 200.0
    assert dataclasses.replace(FULL, seed=ZERO, state=IDLE) == Times(
        0.0, 60.0, 50.0, 100.0, 200.0, IDLE, 150.0
    )
    for figures in (FULL, stopped):
        assert figures == copy.copy(figures) == copy.deepcopy(figures)
        assert figures == pickle.loads(pickle.dumps(figures))
    assert Times(ZERO, ZERO, None, 1.0, 1.0, IDLE) != Plain(0.0, 0.0, None, 1.0, 1.0, IDLE)


# ZERO and an equal 0.0 that is not ZERO (float() makes a new object), -0.0 too.
_figure = st.sampled_from([ZERO, float("0.0"), -0.0, 1.5, 3600.0])
_figures = st.tuples(
    _figure,
    _figure,
    st.one_of(st.none(), _figure),
    st.sampled_from([0.0, 100.0]),
    st.sampled_from([100.0, 200.0]),
    st.sampled_from([IDLE, SEEDING, LEECHING]),
    _figure,
)


@given(_figures, _figures)
def test_times_behaves_as_the_plain_dataclass(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    times_a, times_b, plain_a, plain_b = Times(*a), Times(*b), Plain(*a), Plain(*b)
    assert _fields_of(times_a) == _fields_of(plain_a)
    assert repr(times_a) == repr(plain_a).replace("Plain(", "Times(", 1)
    assert (times_a == times_b) == (plain_a == plain_b)
    assert (times_a != times_b) == (plain_a != plain_b)
    assert hash(times_a) == hash(plain_a)
    assert times_a.due == (plain_a.polled - plain_a.saved_at > times.STEP)
    changed = dataclasses.replace(times_a, **_fields_of(plain_b))
    assert changed == times_b and repr(changed) == repr(times_b)
