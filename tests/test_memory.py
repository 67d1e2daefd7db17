"""What the daemon remembers between polls: first sight, upload growth, tracker messages."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtorrentd.engine.memory import SAMPLES, Memory, Seen, remember, uploaded_since
from rtorrentd.torrent import Torrent

A = "A" * 40
B = "B" * 40


def _torrent(hash_: str = A, uploaded: int | None = None, message: str | None = None) -> Torrent:
    return Torrent(hash=hash_, name=hash_[:4], uploaded=uploaded, message=message)


def _polls(*snapshots: tuple[float, Sequence[Torrent]]) -> Memory:
    memory = Memory()
    for now, torrents in snapshots:
        memory = remember(memory, torrents, now)
    return memory


def test_empty_memory_knows_nothing() -> None:
    assert {} == dict(Memory().seen)
    assert Memory() == Memory.empty()


def test_a_new_torrent_is_first_seen_now() -> None:
    memory = remember(Memory(), [_torrent(uploaded=5, message="")], 100.0)
    assert {A: Seen(first_seen=100.0, uploaded=5)} == dict(memory.seen)


def test_a_torrent_that_disappears_is_forgotten() -> None:
    memory = _polls((100.0, [_torrent(A), _torrent(B)]), (200.0, [_torrent(B)]))
    assert [B] == list(memory.seen)


def test_a_forgotten_torrent_that_returns_is_new_again() -> None:
    memory = _polls((100.0, [_torrent(A)]), (200.0, []), (300.0, [_torrent(A)]))
    assert 300.0 == memory.seen[A].first_seen


def test_remember_returns_a_new_memory_and_leaves_the_old_one() -> None:
    before = remember(Memory(), [_torrent(uploaded=1)], 100.0)
    after = remember(before, [_torrent(uploaded=2)], 200.0)
    assert (1, None) == (before.seen[A].uploaded, before.seen[A].grew_at)
    assert (2, 200.0) == (after.seen[A].uploaded, after.seen[A].grew_at)


def test_the_remembered_mapping_is_read_only() -> None:
    memory = remember(Memory(), [_torrent()], 100.0)
    with pytest.raises(TypeError):
        memory.seen[B] = Seen(first_seen=0.0)  # type: ignore[index]


@pytest.mark.parametrize(
    ("uploads", "expected"),
    [
        pytest.param([10, 10, 10], Seen(100.0, 10, None), id="never grew"),
        pytest.param([10, 20, 20], Seen(100.0, 20, 200.0), id="grew once"),
        pytest.param([10, 20, 30], Seen(100.0, 30, 300.0), id="grew twice"),
        pytest.param([10, None, 10], Seen(100.0, 10, None), id="not fetched: kept"),
        pytest.param([10, None, 30], Seen(100.0, 30, 300.0), id="growth across a gap"),
        pytest.param([None, None, 10], Seen(100.0, 10, None), id="first figure: baseline"),
        pytest.param([50, 10, 10], Seen(100.0, 10, None), id="drop: new baseline"),
        pytest.param([50, 10, 20], Seen(100.0, 20, 300.0), id="growth after a drop"),
    ],
)
def test_upload_growth(uploads: list[int | None], expected: Seen) -> None:
    memory = _polls(*((100.0 * (i + 1), [_torrent(uploaded=u)]) for i, u in enumerate(uploads)))
    seen = memory.seen[A]
    assert (expected.first_seen, expected.uploaded, expected.grew_at) == (
        seen.first_seen,
        seen.uploaded,
        seen.grew_at,
    )


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param(["", "", ""], (None, None), id="no message"),
        pytest.param(["x", "x", "x"], ("x", 100.0), id="standing since first sight"),
        pytest.param(["", "x", "x"], ("x", 200.0), id="appears"),
        pytest.param(["x", "y", "y"], ("y", 200.0), id="changes: counted again"),
        pytest.param(["x", "", "x"], ("x", 300.0), id="cleared then back: counted again"),
        pytest.param(["x", None, "x"], ("x", 100.0), id="not fetched: kept"),
        pytest.param(["x", "x", ""], (None, None), id="cleared"),
    ],
)
def test_tracker_message(
    messages: list[str | None], expected: tuple[str | None, float | None]
) -> None:
    memory = _polls(*((100.0 * (i + 1), [_torrent(message=m)]) for i, m in enumerate(messages)))
    seen = memory.seen[A]
    assert expected == (seen.message, seen.message_since)


def test_unchanged_torrents_keep_their_record() -> None:
    first = remember(Memory(), [_torrent(uploaded=1, message="x")], 100.0)
    second = remember(first, [_torrent(uploaded=1, message="x")], 200.0)
    assert first.seen[A] is second.seen[A]


@given(
    st.lists(
        st.tuples(st.sampled_from([A, B]), st.none() | st.integers(0, 10**12)),
        max_size=12,
    )
)
def test_grew_at_is_only_ever_a_poll_time_after_first_sight(
    polls: list[tuple[str, int | None]],
) -> None:
    memory = Memory()
    for i, (hash_, uploaded) in enumerate(polls):
        memory = remember(memory, [_torrent(hash_, uploaded)], float(i))
        seen = memory.seen[hash_]
        assert seen.grew_at is None or seen.first_seen < seen.grew_at <= i
        assert [hash_] == list(memory.seen)


# --- uploaded_recent: a few samples of the upload total --------------------------

HOUR = 3600.0
WINDOW = 7 * 24 * HOUR


def _uploads(*points: tuple[float, int | None], window: float = WINDOW) -> Seen:
    memory = Memory()
    for now, uploaded in points:
        memory = remember(memory, [_torrent(uploaded=uploaded)], now, window)
    return memory.seen[A]


@pytest.mark.parametrize(
    ("points", "now", "expected"),
    [
        pytest.param([(0.0, 10), (HOUR, 10)], HOUR, 0, id="never grew"),
        pytest.param([(0.0, 10), (HOUR, 25)], HOUR, 15, id="watched less than a window"),
        pytest.param(
            [(0.0, 10), (HOUR, 25), (8 * 24 * HOUR, 40)], 8 * 24 * HOUR, 15, id="a window ago"
        ),
        pytest.param(
            [(0.0, 10), (HOUR, 25), (9 * 24 * HOUR, 25)],
            9 * 24 * HOUR,
            0,
            id="no change within the window",
        ),
        pytest.param([(0.0, 50), (HOUR, 10), (2 * HOUR, 30)], 2 * HOUR, 20, id="after a drop"),
        pytest.param([(0.0, None), (HOUR, 10), (2 * HOUR, 30)], 2 * HOUR, 20, id="first figure"),
    ],
)
def test_uploaded_since_counts_over_the_window_as_far_as_watched(
    points: list[tuple[float, int | None]], now: float, expected: int
) -> None:
    assert expected == uploaded_since(_uploads(*points), now - WINDOW)


def test_upload_samples_stay_bounded_and_err_on_the_high_side() -> None:
    # Grows every 5 minutes for 30 days: thousands of changes, a handful of samples.
    points = [(i * 300.0, i * 1000) for i in range(30 * 288)]
    seen = _uploads(*points)
    now = points[-1][0]
    assert len(seen.samples) <= 2 * (SAMPLES + 2)
    exact = points[-1][1] - (now - WINDOW) / 300.0 * 1000
    got = uploaded_since(seen, now - WINDOW)
    assert exact <= got <= exact * (1 + 2 / SAMPLES)


def test_an_unchanged_total_keeps_the_record_and_its_samples() -> None:
    first = remember(Memory(), [_torrent(uploaded=1)], 100.0)
    second = remember(first, [_torrent(uploaded=5)], 200.0)
    third = remember(second, [_torrent(uploaded=5)], 300.0)
    assert (100, 1, 200, 5) == third.seen[A].samples
    assert second.seen[A] is third.seen[A]
