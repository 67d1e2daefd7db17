"""`seed_time` and the like: accumulated between polls (pure), kept in rtorrent's
session as `d.custom=rtorrentd.times`, surviving daemon and rtorrent restarts."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from flow import album, client_for
from harness import RtorrentProcess, TorrentFactory

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.engine import times
from rtorrentd.engine.derived import DERIVED_COLUMNS, Inputs
from rtorrentd.engine.memory import Memory, Seen, remember, saved, unsaved
from rtorrentd.service.poll import poll_once
from rtorrentd.torrent import Torrent

T0 = 1_700_000_000.0
CAP = 7200.0
H = "A" * 40


def seeding(**values: object) -> Torrent:
    state: dict[str, object] = {"complete": True, "started": True, "active": True}
    return Torrent(H, "t", **(state | values))  # type: ignore[arg-type]


def polls(*snapshots: tuple[float, Torrent], memory: Memory | None = None) -> Memory:
    memory = memory or Memory.empty()
    for now, torrent in snapshots:
        memory = remember(memory, [torrent], now, cap=CAP)
    return memory


def figures(memory: Memory) -> times.Times:
    found = memory.seen[H].times
    assert found is not None
    return found


def test_time_seeding_at_both_polls_counts() -> None:
    memory = polls((T0, seeding()), (T0 + 300, seeding()), (T0 + 600, seeding()))
    assert (600.0, 0.0, T0) == (figures(memory).seed, figures(memory).leech, figures(memory).since)


def test_a_gap_longer_than_the_cap_counts_only_the_cap() -> None:
    # The daemon was down for a day: it saw none of it.
    memory = polls((T0, seeding()), (T0 + 86400, seeding()))
    assert CAP == figures(memory).seed


def test_stopped_or_inactive_at_either_poll_does_not_count() -> None:
    memory = polls(
        (T0, seeding(started=False)),
        (T0 + 300, seeding()),  # was stopped at the poll before: not counted
        (T0 + 600, seeding(active=False)),
        (T0 + 900, seeding()),
    )
    assert 0.0 == figures(memory).seed


def test_incomplete_counts_as_leech_time() -> None:
    memory = polls((T0, seeding(complete=False)), (T0 + 300, seeding(complete=False)))
    assert (0.0, 300.0) == (figures(memory).seed, figures(memory).leech)


def test_without_tracking_asked_nothing_is_counted() -> None:
    memory = remember(Memory.empty(), [seeding()], T0)
    assert memory.seen[H].times is None and {} == unsaved(memory)


def test_a_record_is_continued_and_its_last_upload_makes_idle() -> None:
    record = f"7200,60,{int(T0 - 3600)},{int(T0 - 86400)},5"
    memory = polls((T0, seeding(saved_times=record, uploaded=5)), (T0 + 300, seeding(uploaded=5)))
    found = figures(memory)
    assert (7500.0, 60.0, T0 - 3600, T0 - 86400) == (
        found.seed,
        found.leech,
        found.last_upload,
        found.since,
    )
    assert T0 - 3600 == memory.seen[H].grew_at
    assert 3900.0 == idle_of(memory, T0 + 300)


def test_a_record_without_a_last_upload_makes_idle_count_from_its_start() -> None:
    memory = polls((T0, seeding(saved_times=f"0,0,0,{int(T0 - 86400)},5", uploaded=5)))
    assert 86400.0 == idle_of(memory, T0)


def test_an_upload_made_while_the_daemon_was_down_counts_as_made_now() -> None:
    # Recorded at 5 bytes; rtorrent seeded on while nobody watched: 9 now.
    record = f"7200,0,{int(T0 - 86400 * 30)},{int(T0 - 86400 * 60)},5"
    memory = polls((T0, seeding(saved_times=record, uploaded=9)))
    assert (0.0, T0) == (idle_of(memory, T0), figures(memory).last_upload)


@pytest.mark.parametrize("uploaded", [None, 3])
def test_a_record_without_the_total_or_with_a_higher_one_is_no_history(
    uploaded: int | None,
) -> None:
    # The first format kept no total, so an upload since cannot be ruled out; a
    # lower total means the torrent was added again.
    record = f"7200,0,{int(T0 - 86400 * 30)},{int(T0 - 86400 * 60)}"
    if uploaded is not None:
        record += ",5"
    memory = polls((T0, seeding(saved_times=record, uploaded=uploaded)))
    assert 0.0 == idle_of(memory, T0)
    assert 7200.0 == figures(memory).seed  # the seeding time itself is kept


def test_uploaded_recent_carries_on_from_the_recorded_samples() -> None:
    # Watched from a week ago: 100 bytes then, 160 two days ago; no upload since.
    week = 7 * 86400
    start, grew = int(T0 - week), int(T0 - 2 * 86400)
    record = f"0,0,{grew},{start},160,{start},100,{grew},160"
    memory = polls((T0, seeding(saved_times=record, uploaded=160)))
    assert 60 == recent_of(memory, T0)
    memory = polls((T0 + 300, seeding(uploaded=170)), memory=memory)
    assert 70 == recent_of(memory, T0 + 300)


def test_a_record_holds_the_total_and_samples_and_reads_back_the_same() -> None:
    memory = polls((T0, seeding(uploaded=5)), (T0 + 7200, seeding(uploaded=9)))
    text = unsaved(memory)[H]
    assert f"7200,0,{int(T0 + 7200)},{int(T0)},9,{int(T0)},5,{int(T0 + 7200)},9" == text
    again = polls((T0 + 7300, seeding(saved_times=text, uploaded=9)))
    assert memory.seen[H].samples == again.seen[H].samples
    assert recent_of(memory, T0 + 7300) == recent_of(again, T0 + 7300)


def test_too_many_samples_drop_middle_ones_which_only_raises_uploaded_recent() -> None:
    samples = tuple(v for n in range(30) for v in (int(T0) + n * 1000, n * 10))
    kept = times.thinned(samples)
    assert len(kept) == 2 * times.MAX_SAMPLES and kept[:2] == samples[:2]
    assert kept[-2:] == samples[-2:]


def idle_of(memory: Memory, now: float) -> float:
    return _derived("idle", memory, now)


def recent_of(memory: Memory, now: float) -> int:
    return int(_derived("uploaded_recent", memory, now))


def _derived(name: str, memory: Memory, now: float) -> float:
    column = DERIVED_COLUMNS[name]([seeding()], Inputs(now, memory))
    value = column[0]
    assert isinstance(value, int | float)
    return float(value)


def test_last_upload_is_when_uploaded_grew() -> None:
    memory = polls((T0, seeding(uploaded=5)), (T0 + 300, seeding(uploaded=9)))
    assert T0 + 300 == figures(memory).last_upload


@pytest.mark.parametrize("record", ["", "garbage", "1,2,3", "1,2,3,-4", "a,b,c,d", "1,2,3,4,5,6"])
def test_a_record_not_ours_starts_from_zero(record: str) -> None:
    found = figures(polls((T0, seeding(saved_times=record))))
    assert (0.0, T0) == (found.seed, found.since)


def test_only_records_that_moved_by_more_than_a_step_are_written_again() -> None:
    memory = polls((T0, seeding()))
    first = unsaved(memory)
    assert {H: f"0,0,0,{int(T0)}"} == first
    memory = saved(memory, first)
    memory = polls((T0 + times.STEP, seeding()), memory=memory)
    assert {} == unsaved(memory)  # moved by exactly a step: not yet
    memory = polls((T0 + times.STEP + 1, seeding()), memory=memory)
    assert {H: f"{int(times.STEP) + 1},0,0,{int(T0)}"} == unsaved(memory)


def test_a_record_read_back_waits_a_step_and_the_first_format_is_upgraded() -> None:
    current = f"7200,0,0,{int(T0 - 86400)},5"
    memory = polls((T0, seeding(saved_times=current, uploaded=5)))
    assert {} == unsaved(memory) and not figures(memory).due
    memory = polls((T0 + times.STEP + 1, seeding(uploaded=5)), memory=memory)
    assert {H: f"{7200 + int(times.STEP) + 1},0,0,{int(T0 - 86400)},5"} == unsaved(memory)
    old = polls((T0, seeding(saved_times=f"7200,0,0,{int(T0 - 86400)}", uploaded=5)))
    assert {H: f"7200,0,0,{int(T0 - 86400)},5"} == unsaved(old)


def test_at_most_a_budget_of_records_is_written_a_poll_most_moved_first() -> None:
    torrents = [
        Torrent(f"{n:040X}", "t", complete=True, started=True, active=True) for n in range(3)
    ]
    memory = remember(Memory.empty(), torrents, T0, cap=CAP)
    assert 2 == len(unsaved(memory, limit=2)) and 3 == len(unsaved(memory))


def test_over_the_budget_those_that_moved_most_are_written_ties_in_memory_order() -> None:
    def seen(seed: float, record: str | None) -> Seen:
        figures = times.Times(seed, 0.0, None, T0, T0 + 2 * times.STEP, times.SEEDING)
        return Seen(T0, None, times=figures, saved=record)

    on_record = f"0,0,0,{int(T0)}"
    by_hash = {
        "A" * 40: seen(5 * times.STEP, on_record),
        "B" * 40: seen(9 * times.STEP, None),  # no record: moved infinitely
        "C" * 40: seen(0.5 * times.STEP, on_record),  # not moved by a step
        "D" * 40: seen(7 * times.STEP, on_record),
        "E" * 40: seen(9 * times.STEP, "not ours"),  # moved infinitely too
        "F" * 40: seen(7 * times.STEP, on_record),
    }
    memory = Memory(MappingProxyType(by_hash))
    assert ["B" * 40, "E" * 40, "D" * 40] == list(unsaved(memory, limit=3))
    assert ["B" * 40, "E" * 40, "D" * 40, "F" * 40] == list(unsaved(memory, limit=4))
    # Within the budget: every one that moved, in the memory's order.
    everyone = ["A" * 40, "B" * 40, "D" * 40, "E" * 40, "F" * 40]
    assert everyone == list(unsaved(memory, limit=5)) == list(unsaved(memory))
    assert f"{int(9 * times.STEP)},0,0,{int(T0)}" == unsaved(memory)["B" * 40]


def test_torrents_first_tracked_without_a_record_share_their_figures_until_they_move() -> None:
    # At 100,000 torrents a Times each is 9 MiB; frozen, equal ones can be one object.
    hashes = [f"{n:040X}" for n in range(4)]
    stopped = [Torrent(h, "t", complete=True, started=False, active=False) for h in hashes]
    memory = remember(Memory.empty(), stopped, T0, cap=CAP)
    first = [memory.seen[h].times for h in hashes]
    assert all(t is first[0] for t in first)
    assert first[0] == times.Times(0.0, 0.0, None, T0, T0, times.IDLE)
    started = [Torrent(hashes[0], "t", complete=True, started=True, active=True), *stopped[1:]]
    memory = remember(memory, started, T0 + 300, cap=CAP)
    memory = remember(memory, started, T0 + 600, cap=CAP)
    assert 300.0 == figures_of(memory, hashes[0]).seed
    assert all(memory.seen[h].times is first[0] for h in hashes[1:])
    assert 0.0 == first[0].seed  # the shared one did not move


def test_a_record_of_zero_seconds_reads_as_the_one_zero() -> None:
    # 24 bytes a torrent at 100,000: its leech time, when complete when first seen.
    first, second = times.parse_record(f"0,0,0,{int(T0)},5"), times.parse_record("7,0,0,1")
    assert first is not None and second is not None
    assert (0.0, 0.0, 7.0) == (first.seed, first.leech, second.seed)
    assert first.leech is first.seed is second.leech  # one object, not a float each


# --- against a real rtorrent --------------------------------------------------------


def config_for(rt: RtorrentProcess) -> Config:
    text = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n[daemon]\ninterval = "30m"\n'
        '[[rule]]\nname = "seeded"\nwhen = "seed_time >= 100m"\naction = "relabel"\n'
        'label = "seeded"\n'
    )
    return parse_config(text, "test.toml")


@pytest.mark.integration
@pytest.mark.anyio
async def test_seed_time_survives_a_daemon_and_an_rtorrent_restart(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    info_hash = rtorrent.load(album(torrent_factory, rtorrent.download_dir), complete=True)
    config = config_for(rtorrent)  # polls 30 minutes apart: at most an hour per gap

    async def poll(memory: Memory, now: float) -> Memory:
        client = client_for(rtorrent)
        return (await poll_once(client, config, memory, dry_run=False, now=now)).memory

    def record() -> object:
        return rtorrent.call("d.custom", info_hash, times.RECORD_KEY)

    memory = await poll(Memory.empty(), T0)
    assert f"0,0,0,{int(T0)},0" == record()
    memory = await poll(memory, T0 + 1800)
    memory = await poll(memory, T0 + 3600)
    assert f"0,0,0,{int(T0)},0" == record()  # moved by an hour: not more than a step
    memory = await poll(memory, T0 + 3700)
    assert f"3700,0,0,{int(T0)},0" == record()

    # The daemon restarts (no memory): it reads its record back, and counts on.
    memory = await poll(Memory.empty(), T0 + 5000)
    assert 3700.0 == figures_of(memory, info_hash).seed  # the unseen gap is not counted
    assert "" == rtorrent.call("d.custom1", info_hash)
    memory = await poll(memory, T0 + 6800)
    memory = await poll(memory, T0 + 8700)
    assert 3700.0 + 1800 + 1900 == figures_of(memory, info_hash).seed
    assert "seeded" == rtorrent.call("d.custom1", info_hash)  # 100 minutes reached
    assert f"7400,0,0,{int(T0)},0" == record()

    # rtorrent restarts too (a clean exit saves its session, custom values with it),
    # and the daemon with it.
    rtorrent.restart(clean=True)
    memory = await poll(Memory.empty(), T0 + 8800)
    found = figures_of(memory, info_hash)
    assert (7400.0, T0) == (found.seed, found.since)
    memory = await poll(memory, T0 + 9100)
    assert 7700.0 == figures_of(memory, info_hash).seed


@pytest.mark.integration
@pytest.mark.anyio
async def test_idle_carries_on_after_a_daemon_restart_from_the_record(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    info_hash = rtorrent.load(album(torrent_factory, rtorrent.download_dir), complete=True)
    text = (
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n[daemon]\ninterval = "30m"\n'
        '[[rule]]\nname = "quiet"\nwhen = "idle >= 100m"\naction = "relabel"\n'
        'label = "quiet"\n'
    )
    config = parse_config(text, "test.toml")
    client = client_for(rtorrent)
    await poll_once(client, config, Memory.empty(), dry_run=False, now=T0)
    assert f"0,0,0,{int(T0)},0" == rtorrent.call("d.custom", info_hash, times.RECORD_KEY)
    # A restarted daemon (no memory) 7,000 s later: nothing uploaded since the
    # record, so the torrent has been idle since T0, not since the restart.
    await poll_once(client_for(rtorrent), config, Memory.empty(), dry_run=False, now=T0 + 7000)
    assert "quiet" == rtorrent.call("d.custom1", info_hash)


def figures_of(memory: Memory, info_hash: str) -> times.Times:
    found = memory.seen[info_hash].times
    assert found is not None
    return found
