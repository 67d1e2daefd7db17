"""`seed_time` and the like: accumulated between polls (pure), kept in rtorrent's
session as `d.custom=rtorrentd.times`, surviving daemon and rtorrent restarts."""

from __future__ import annotations

import pytest
from flow import album, client_for
from harness import RtorrentProcess, TorrentFactory

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.engine import times
from rtorrentd.engine.memory import Memory, remember, saved, unsaved
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
    record = f"7200,60,{int(T0 - 3600)},{int(T0 - 86400)}"
    memory = polls((T0, seeding(saved_times=record, uploaded=5)), (T0 + 300, seeding(uploaded=5)))
    found = figures(memory)
    assert (7500.0, 60.0, T0 - 3600, T0 - 86400) == (
        found.seed,
        found.leech,
        found.last_upload,
        found.since,
    )
    assert T0 - 3600 == memory.seen[H].grew_at


def test_last_upload_is_when_uploaded_grew() -> None:
    memory = polls((T0, seeding(uploaded=5)), (T0 + 300, seeding(uploaded=9)))
    assert T0 + 300 == figures(memory).last_upload


@pytest.mark.parametrize("record", ["", "garbage", "1,2,3", "1,2,3,-4", "a,b,c,d", "1,2,3,4,5"])
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


def test_at_most_a_budget_of_records_is_written_a_poll_most_moved_first() -> None:
    torrents = [
        Torrent(f"{n:040X}", "t", complete=True, started=True, active=True) for n in range(3)
    ]
    memory = remember(Memory.empty(), torrents, T0, cap=CAP)
    assert 2 == len(unsaved(memory, limit=2)) and 3 == len(unsaved(memory))


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
    assert f"0,0,0,{int(T0)}" == record()
    memory = await poll(memory, T0 + 1800)
    memory = await poll(memory, T0 + 3600)
    assert f"0,0,0,{int(T0)}" == record()  # moved by an hour: not more than a step
    memory = await poll(memory, T0 + 3700)
    assert f"3700,0,0,{int(T0)}" == record()

    # The daemon restarts (no memory): it reads its record back, and counts on.
    memory = await poll(Memory.empty(), T0 + 5000)
    assert 3700.0 == figures_of(memory, info_hash).seed  # the unseen gap is not counted
    assert "" == rtorrent.call("d.custom1", info_hash)
    memory = await poll(memory, T0 + 6800)
    memory = await poll(memory, T0 + 8700)
    assert 3700.0 + 1800 + 1900 == figures_of(memory, info_hash).seed
    assert "seeded" == rtorrent.call("d.custom1", info_hash)  # 100 minutes reached
    assert f"7400,0,0,{int(T0)}" == record()

    # rtorrent restarts too (a clean exit saves its session, custom values with it),
    # and the daemon with it.
    rtorrent.restart(clean=True)
    memory = await poll(Memory.empty(), T0 + 8800)
    found = figures_of(memory, info_hash)
    assert (7400.0, T0) == (found.seed, found.since)
    memory = await poll(memory, T0 + 9100)
    assert 7700.0 == figures_of(memory, info_hash).seed


def figures_of(memory: Memory, info_hash: str) -> times.Times:
    found = memory.seen[info_hash].times
    assert found is not None
    return found
