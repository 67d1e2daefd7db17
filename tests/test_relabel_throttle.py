"""`relabel` and `throttle` against a real rtorrent: carried out, idempotent (a
second poll plans nothing), and a throttle group rtorrent lacks is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flow import album, client_for, one_result, poll
from harness import RtorrentProcess, TorrentFactory
from structlog.testing import capture_logs

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Action, Config

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def throttled(
    tmp_path: Path, make_rtorrent: Callable[..., RtorrentProcess]
) -> Iterator[RtorrentProcess]:
    """An rtorrent with an upload throttle group "slow"."""
    with make_rtorrent(
        tmp_path / "rt", clean_exit=False, extra_config=["throttle.up = slow,100"]
    ) as process:
        yield process


def config_with(rt: RtorrentProcess, action: str, target: str, when: str = "complete") -> Config:
    text = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n'
        f'[[rule]]\nname = "r"\nwhen = \'{when}\'\naction = "{action}"\n'
        f'{"label" if action == "relabel" else "throttle"} = "{target}"\n'
    )
    return parse_config(text, "test.toml")


async def test_relabel_writes_the_label_as_rutorrent_does_and_only_once(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    info_hash = rtorrent.load(album(torrent_factory, rtorrent.download_dir), complete=True)
    config = config_with(rtorrent, "relabel", "seeded by me/ü")
    client = client_for(rtorrent)

    with capture_logs() as logs:
        first = await poll(client, config)
    second = await poll(client, config)

    assert "seeded%20by%20me%2F%C3%BC" == rtorrent.call("d.custom1", info_hash)
    assert "action.done" == one_result(logs, info_hash)["event"]
    assert [Action.RELABEL] == [s.action for s in first.plan.steps]
    assert () == second.plan.steps and () == second.results
    assert (1, 1) == (rtorrent.call("d.state", info_hash), rtorrent.call("d.is_active", info_hash))


async def test_throttle_moves_a_running_torrent_into_the_group_and_keeps_it_running(
    throttled: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    rt = throttled
    info_hash = rt.load(album(torrent_factory, rt.download_dir), complete=True)
    assert 1 == rt.call("d.is_active", info_hash)  # rtorrent refuses the set while active
    config = config_with(rt, "throttle", "slow")
    client = client_for(rt)

    with capture_logs() as logs:
        await poll(client, config)
    second = await poll(client, config)

    assert "slow" == rt.call("d.throttle_name", info_hash)
    assert (1, 1) == (rt.call("d.state", info_hash), rt.call("d.is_active", info_hash))
    assert "action.done" == one_result(logs, info_hash)["event"]
    assert () == second.plan.steps


async def test_throttle_of_a_stopped_torrent_leaves_it_stopped(
    throttled: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    rt = throttled
    info_hash = rt.load(album(torrent_factory, rt.download_dir), complete=True)
    rt.call("d.stop", info_hash)

    await poll(client_for(rt), config_with(rt, "throttle", "slow"))

    assert "slow" == rt.call("d.throttle_name", info_hash)
    assert (0, 0) == (rt.call("d.state", info_hash), rt.call("d.is_active", info_hash))


async def test_a_throttle_group_rtorrent_lacks_is_refused_and_nothing_changes(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    info_hash = rtorrent.load(album(torrent_factory, rtorrent.download_dir), complete=True)

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_with(rtorrent, "throttle", "nosuch"))

    event = one_result(logs, info_hash)
    assert "action.refused" == event["event"]
    assert 'rtorrent has no throttle group "nosuch"' in event["reason"]
    assert "" == rtorrent.call("d.throttle_name", info_hash)
    assert (1, 1) == (rtorrent.call("d.state", info_hash), rtorrent.call("d.is_active", info_hash))


async def test_dry_run_plans_relabel_and_sets_nothing(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    info_hash = rtorrent.load(album(torrent_factory, rtorrent.download_dir), complete=True)

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_with(rtorrent, "relabel", "x"), dry_run=True)

    assert "action.planned" == one_result(logs, info_hash)["event"]
    assert "" == rtorrent.call("d.custom1", info_hash)
