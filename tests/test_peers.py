"""The instances of one daemon as each other's neighbours (`deletion.peers`).

Unit tests of what an instance publishes and when another may rely on it; then
polls of real rtorrents (0.9.8 and 0.16) beside an instance whose rtorrent hangs:
a real socket server that accepts and never answers.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from flow import LABEL_DOOMED, album, client_for, config_for, contents, one_result, state
from harness import RtorrentProcess, TorrentFactory
from structlog.testing import capture_logs
from trees import Canaries

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.deletion.peers import (
    PEER_TIMEOUT,
    Clock,
    Membership,
    Peers,
    devices_of,
    peer_config,
    publication,
)
from rtorrentd.deletion.results import Result
from rtorrentd.deletion.sharing import LinkScanner
from rtorrentd.engine.memory import Memory
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import PollResult, poll_once, publish
from rtorrentd.torrent import Torrent


def config(url: str = "scgi:///run/a.socket", interval: str = "1m") -> Config:
    text = f'[rtorrent]\nurl = "{url}"\ntimeout = "20s"\n[daemon]\ninterval = "{interval}"\n'
    return parse_config(text, "x.toml")


def client(url: str = "scgi:///run/a.socket") -> RtorrentClient:
    return RtorrentClient(open_transport(url))


# --- unit: what is published --------------------------------------------------------


def test_a_publication_gives_back_every_torrent_exactly(tmp_path: Path) -> None:
    odd = "caf\udce9 \x00 line\nbreak ✓ 🎉"  # a byte that is not UTF-8, NUL, emoji
    torrents = [
        Torrent("A" * 40, "Movie", directory=str(tmp_path), path=str(tmp_path / "Movie")),
        Torrent("B" * 40, odd, directory=f"{tmp_path}/{odd}", path=f"{tmp_path}/{odd}/x"),
        Torrent("C" * 40, "never placed"),  # no path fields: an empty directory
    ]
    published = publication(torrents, Clock(1_700_000_000, 42), at=5.0)
    holders = published.holders("instance bob")

    assert [(h.source, h.hash, h.name, h.directory, h.path) for h in holders] == [
        ("instance bob", "A" * 40, "Movie", str(tmp_path), str(tmp_path / "Movie")),
        ("instance bob", "B" * 40, odd, f"{tmp_path}/{odd}", f"{tmp_path}/{odd}/x"),
        ("instance bob", "C" * 40, "never placed", "", ""),
    ]
    assert (1_700_000_000 - 2, 42, 3, 5.0) == (
        published.since,
        published.pid,
        published.count,
        published.at,
    )
    assert published.devices is None  # the one never placed could be anywhere


def test_a_thousand_torrents_publish_in_a_few_bytes_each(tmp_path: Path) -> None:
    torrents = [
        Torrent(f"{i:040X}", f"Some.Show.S01E{i:03d}.1080p.WEB.x264-GROUP", directory="/srv/dl")
        for i in range(1000)
    ]
    published = publication(torrents, Clock(None, None))
    # The 100 x 1,000 benchmark keeps 100 of these: well under a MiB in all.
    assert len(published.packed) < 40 * 1000
    assert published.since == -2  # no clock: every torrent counts as loaded since


def test_the_filesystem_of_a_missing_directory_is_its_nearest_parents(
    tmp_path: Path, elsewhere: Path
) -> None:
    here, there = tmp_path.stat().st_dev, elsewhere.stat().st_dev
    (tmp_path / "link").symlink_to(elsewhere)

    assert frozenset({here}) == devices_of([str(tmp_path / "gone/deeper")])
    assert frozenset({here, there}) == devices_of([str(tmp_path), str(tmp_path / "link/x")])
    assert devices_of(["relative/dir", str(tmp_path)]) is None


# --- unit: when another instance may be relied on -----------------------------------


def test_a_peer_shares_the_filesystems_of_its_roots_and_of_its_torrents() -> None:
    peers = Peers()
    peers.join("bob", config(), client(), {1})
    bob = peers.get("bob")
    assert bob is not None
    # Before its first read, its torrents could be anywhere.
    assert bob.shares(frozenset({2}))

    peers.down("bob", "connection refused")  # never read: its allowed roots only
    bob = peers.get("bob")
    assert bob is not None
    assert (True, False) == (bob.shares(frozenset({1})), bob.shares(frozenset({2})))
    assert bob.shares(None)  # the victim's filesystem unknown: everyone counts

    torrent = Torrent("A" * 40, "x", directory="/", path="/x")
    peers.publish("bob", publication([torrent], Clock(10, None)))
    bob = peers.get("bob")
    assert bob is not None
    assert bob.shares(frozenset({os.stat("/").st_dev})) and bob.shares(frozenset({1}))
    assert not bob.shares(frozenset({-1}))


def test_a_peer_is_usable_once_read_until_down_or_stale() -> None:
    peers = Peers()
    peers.join("bob", config(interval="1m"), client(), {1})
    bob = peers.get("bob")
    assert bob is not None and bob.unsettled
    assert "has not read its rtorrent yet" in bob.unusable(time.monotonic())

    peers.publish("bob", publication([], Clock(10, None), at=100.0))
    bob = peers.get("bob")
    assert bob is not None and bob.settled.is_set() and not bob.unsettled
    assert "" == bob.unusable(100.0 + 2 * 60 + 20)  # its poll's deadline: 2 intervals + timeout
    assert "last read its rtorrent 141 s ago (more than 140 s" in bob.unusable(241.0)

    peers.down("bob", "connection refused")
    bob = peers.get("bob")
    assert bob is not None
    assert "cannot be read (connection refused)" in bob.unusable(100.0)


def test_a_reload_keeps_a_publication_only_for_the_same_rtorrent() -> None:
    peers = Peers()
    first = client()
    peers.join("bob", config(), first, {1})
    peers.publish("bob", publication([], Clock(10, None)))
    peers.join("bob", config(interval="5m"), client(), {1})
    bob = peers.get("bob")
    assert bob is not None and bob.publication is not None and 5 * 60 * 2 + 20 == bob.stale_after

    peers.join("bob", config("scgi:///run/other.socket"), client(), {1})
    bob = peers.get("bob")
    assert bob is not None and bob.publication is None

    peers.leave("bob", first)  # an old instance of that name ending: not the new one
    assert peers.get("bob") is not None
    peers.leave("bob")
    assert (None, 0) == (peers.get("bob"), len(peers))


def test_an_instance_publishes_only_when_another_may_delete(tmp_path: Path) -> None:
    # Nothing to read its list for, nothing fetched: the 100 x 1,000 benchmark's
    # instances delete nothing, and pay nothing for one another.
    peers = Peers()
    peers.join("alice", config(), client(), ())
    peers.join("bob", config(), client(), ())
    assert not Membership(peers, "alice").read_by_others()

    text = f'[rtorrent]\nurl = "scgi:///run/b.socket"\n[safety]\nallowed_roots = ["{tmp_path}"]\n'
    peers.join("bob", parse_config(text, "bob.toml"), client(), {tmp_path.stat().st_dev})
    assert Membership(peers, "alice").read_by_others()
    assert not Membership(peers, "bob").read_by_others()


def test_the_client_for_the_others_has_short_timeouts() -> None:
    limited = peer_config(config()).rtorrent
    assert (PEER_TIMEOUT, PEER_TIMEOUT) == (limited.timeout, limited.connect_timeout)


def test_overlapping_rounds_of_the_shared_link_scanner_keep_each_others_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon's instances share one scanner, each from its own worker threads.
    old = time.time() - 60
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (old, old))
    listed: list[str] = []
    real_scandir = os.scandir

    def counting(path: str) -> object:
        listed.append(os.path.basename(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    scanner = LinkScanner()
    scanner.begin()  # alice's round
    scanner.holds_link(str(tmp_path / "one"))
    scanner.begin()  # bob's, before alice's ends
    scanner.holds_link(str(tmp_path / "two"))
    scanner.end()  # alice's: bob's entry stays
    scanner.end()
    scanner.begin()
    scanner.holds_link(str(tmp_path / "one"))
    scanner.holds_link(str(tmp_path / "two"))
    scanner.end()

    assert ["one", "two"] == listed  # each listed once, both rounds' entries kept


# --- a hung neighbour, against real rtorrents -----------------------------------------


class Silent:
    """A real socket server that accepts every connection and never answers: a
    hung rtorrent. Counts the connections."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="hung-")  # AF_UNIX paths are short
        self.path = os.path.join(self.directory, "rpc.socket")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(16)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"scgi://{self.path}"

    @property
    def connections(self) -> int:
        return len(self.held)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(timeout=5)
        for connection in self.held:
            connection.close()
        os.unlink(self.path)
        os.rmdir(self.directory)


@pytest.fixture
def hung() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


async def timed_poll(
    rt: RtorrentProcess, cfg: Config, member: Membership
) -> tuple[PollResult, float]:
    started = anyio.current_time()
    result = await poll_once(
        client_for(rt), cfg, Memory.empty(), dry_run=False, now=time.time(), member=member
    )
    return result, anyio.current_time() - started


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_hung_neighbour_costs_its_disk_the_bound_once_and_other_disks_nothing(
    tmp_path: Path,
    elsewhere: Path,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    hung: Silent,
) -> None:
    with ExitStack() as stack:
        alice = stack.enter_context(make_rtorrent(tmp_path / "alice", clean_exit=False))
        carol = stack.enter_context(make_rtorrent(elsewhere / "carol", clean_exit=False))
        peers = Peers()
        configs = {
            name: config_for(rt, [rt.download_dir])
            for name, rt in (("alice", alice), ("carol", carol))
        }
        for name, rt in (("alice", alice), ("carol", carol)):
            roots = {rt.download_dir.stat().st_dev}
            peers.join(name, configs[name], client_for(rt), roots)
        # bob read his rtorrent a moment ago; since then it hangs. His data is on
        # alice's disk.
        peers.join("bob", config(hung.url), client(hung.url), {tmp_path.stat().st_dev})
        peers.publish("bob", publication([], Clock(int(time.time()), None)))
        doomed = [album(torrent_factory, alice.download_dir, f"a{i}", seed=i) for i in (1, 2)]
        for torrent in doomed:
            alice.load(torrent, commands=(LABEL_DOOMED,), complete=True)
        theirs = album(torrent_factory, carol.download_dir, "c", seed=5)
        carol.load(theirs, commands=(LABEL_DOOMED,), complete=True)
        canaries = Canaries()
        for torrent in doomed:
            canaries.keep(contents(torrent))
        # The daemon runs: each instance has read its rtorrent once.
        await publish(client_for(carol), Membership(peers, "carol"))

        with capture_logs() as logs:
            result, took = await timed_poll(alice, configs["alice"], Membership(peers, "alice"))

        # Both refused; bob was asked once (the second deletion did not wait again).
        assert [Result.REFUSED, Result.REFUSED] == [r.result for r in result.results]
        reason = one_result(logs, doomed[0].info_hash)["reason"]
        assert f"the rtorrent of instance bob ({hung.url}) did not answer within 3 s" in reason
        assert reason == one_result(logs, doomed[1].info_hash)["reason"]
        assert PEER_TIMEOUT <= took < PEER_TIMEOUT + 2
        assert 1 == hung.connections
        canaries.check()
        assert {t.info_hash: (1, 1) for t in doomed} == state(alice)

        # carol's data is on another disk: bob is not asked, nothing waits.
        with capture_logs() as logs:
            result, took = await timed_poll(carol, configs["carol"], Membership(peers, "carol"))

        assert [Result.DONE] == [r.result for r in result.results]
        assert {} == state(carol)
        assert took < PEER_TIMEOUT
        assert 1 == hung.connections


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_torrent_a_neighbour_loaded_after_its_publication_is_kept(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess], torrent_factory: TorrentFactory
) -> None:
    ours, other = rtorrent_pair
    doomed = album(torrent_factory, ours.download_dir)
    ours.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    peers = Peers()
    cfg = config_for(ours, [ours.download_dir])
    device = {ours.download_dir.stat().st_dev}
    peers.join("ours", cfg, client_for(ours), device)
    other_cfg = config_for(other, [other.download_dir])
    peers.join("other", other_cfg, client_for(other), {other.download_dir.stat().st_dev})
    # other published before it loaded the cross-seed: only `loaded_since` finds it.
    clock = other.call("system.time")
    peers.publish("other", publication([], Clock(clock, other.pid)))
    cross = other.load(doomed, complete=True)  # the same data at the same path
    canaries = Canaries()
    canaries.keep(contents(doomed))

    with capture_logs() as logs:
        await poll_once(
            client_for(ours),
            cfg,
            Memory.empty(),
            dry_run=False,
            now=time.time(),
            member=Membership(peers, "ours"),
        )

    canaries.check()
    event = one_result(logs, doomed.info_hash)
    assert "action.done" == event["event"]
    assert len(doomed.files) == len(event["kept_shared"])
    assert {} == state(ours) and {cross: (1, 1)} == state(other)
    assert not [e for e in logs if e["event"] == "sharing.unlisted_rtorrent"]


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_cross_seed_deleted_by_both_instances_leaves_no_orphaned_data(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess], torrent_factory: TorrentFactory
) -> None:
    alice, bob = rtorrent_pair
    shared = album(torrent_factory, alice.download_dir)
    for rt in (alice, bob):  # the same data, at the same path, in both
        rt.load(shared, commands=(LABEL_DOOMED,), complete=True)
    peers = Peers()
    configs = {"alice": config_for(alice, [alice.download_dir])}
    configs["bob"] = config_for(bob, [alice.download_dir])
    for name, rt in (("alice", alice), ("bob", bob)):
        peers.join(name, configs[name], client_for(rt), {alice.download_dir.stat().st_dev})
    peers.publish("bob", publication([], Clock(bob.call("system.time"), bob.pid)))

    async def poll(name: str, rt: RtorrentProcess) -> dict[str, Any]:
        with capture_logs() as logs:
            await poll_once(
                client_for(rt),
                configs[name],
                Memory.empty(),
                dry_run=False,
                now=time.time(),
                member=Membership(peers, name),
            )
        return dict(one_result(logs, shared.info_hash))

    # alice's list, published at her poll, still has the torrent she erased; bob's
    # deletion must not keep the files for it (nobody would delete them then): her
    # rtorrent, asked for its files, lists none.
    first = await poll("alice", alice)
    assert ("action.done", len(shared.files)) == (first["event"], len(first["kept_shared"]))
    second = await poll("bob", bob)
    assert ("action.done", None) == (second["event"], second["kept_shared"])
    assert not shared.payload_path.exists()
    assert {} == state(alice) == state(bob)
