"""Several instances in one daemon (`rtorrentd run -c DIR`): loading a directory,
and the daemon against three real rtorrents, one of which hangs, then dies; and
instances on one disk keeping each other's files (`deletion.peers`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from harness import VERSIONS, RtorrentProcess, TorrentFactory, random_bytes
from test_daemon import CLOCK, RunningDaemon, config_text, gone, load, rule

from rtorrentd.config.instances import instance_files, load_instances, read_each
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import MetricsSettings
from rtorrentd.deletion.peers import PEER_TIMEOUT
from rtorrentd.errors import ConfigError
from rtorrentd.service.instance import journal_for
from rtorrentd.service.status import fleet_status

NAMES = ("alice", "bob", "carol")


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_directory_is_one_instance_per_toml_file_named_by_its_stem(tmp_path: Path) -> None:
    for name in NAMES:
        _write(tmp_path, name, config_text(url=f"scgi:///run/{name}.socket"))
    (tmp_path / ".#alice.toml").write_text("editor lock")
    (tmp_path / "notes.txt").write_text("not a config")
    instances = load_instances(tmp_path)
    assert (True, NAMES) == (instances.directory, tuple(instances.configs))
    assert "scgi:///run/bob.socket" == instances.configs["bob"].rtorrent.url
    assert str(tmp_path / "bob.toml") == instances.configs["bob"].source


def test_a_single_file_is_one_instance_named_by_its_stem(tmp_path: Path) -> None:
    path = _write(tmp_path, "roger", config_text())
    instances = load_instances(path)
    assert (False, ("roger",)) == (instances.directory, tuple(instances.configs))
    assert {"roger": str(path)} == instance_files(str(path))


def test_metrics_may_stand_in_one_file_and_not_two(tmp_path: Path) -> None:
    _write(tmp_path, "alice", config_text() + '[metrics]\nlisten = "127.0.0.1:9721"\n')
    _write(tmp_path, "bob", config_text())
    assert MetricsSettings(("127.0.0.1", 9721)) == load_instances(tmp_path).metrics

    _write(tmp_path, "bob", config_text() + '[metrics]\ntextfile = "/var/lib/x.prom"\n')
    loaded = read_each(str(tmp_path))
    assert ([], ["alice", "bob"]) == (list(loaded.configs), sorted(loaded.errors))
    assert f"[metrics] is also in {tmp_path / 'bob.toml'}" in str(loaded.errors["alice"])
    with pytest.raises(ConfigError, match="write daemon-wide tables in one file only"):
        load_instances(tmp_path)


def test_every_broken_file_is_named_and_the_good_ones_are_still_read(tmp_path: Path) -> None:
    _write(tmp_path, "alice", config_text())
    _write(tmp_path, "bob", config_text() + "[deamon]\n")
    _write(tmp_path, "carol", "[rtorrent]\n")
    loaded = read_each(str(tmp_path))
    assert (["alice"], ["bob", "carol"]) == (list(loaded.configs), sorted(loaded.errors))
    with pytest.raises(ConfigError) as caught:
        load_instances(tmp_path)
    assert "bob.toml" in str(caught.value)
    assert "carol.toml" in str(caught.value)


def test_a_directory_without_toml_files_says_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \*\.toml file: write one per rtorrent"):
        load_instances(tmp_path)


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    # A process of its own: the command configures logging for the whole process.
    command = [sys.executable, "-m", "rtorrentd", "check", "-c", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_check_a_directory(tmp_path: Path) -> None:
    for name in NAMES:
        _write(tmp_path, name, config_text(rule("a", "^a")))
    checked = _check(tmp_path)
    lines = checked.stdout.splitlines()
    assert 0 == checked.returncode
    assert [f"{tmp_path}/{name}.toml: valid" for name in NAMES] == [
        line.split(";")[0] for line in lines[:3]
    ]
    assert f"{tmp_path}: 3 instances" == lines[3]

    _write(tmp_path, "bob", "[rtorrent]\n")
    checked = _check(tmp_path)
    assert 2 == checked.returncode
    assert "bob.toml" in checked.stderr


@pytest.mark.parametrize(
    ("down", "expected"),
    [
        ([], "3 instances; alice: 12 torrents at 14:05, next 14:10"),
        (["bob"], "3 instances, 1 unreachable (bob); alice: 12 torrents at 14:05, next 14:10"),
        (
            [f"n{i}" for i in range(7)],
            "3 instances, 7 unreachable (n0, n1, n2, n3, n4, …); alice: 12 torrents at 14:05, "
            "next 14:10",
        ),
    ],
)
def test_fleet_status(down: list[str], expected: str) -> None:
    assert expected == fleet_status(3, down, "alice", "12 torrents at 14:05, next 14:10")


# --- the daemon against three real rtorrents --------------------------------------


@pytest.fixture
def three(
    tmp_path: Path, elsewhere: Path, make_rtorrent: Callable[..., RtorrentProcess]
) -> Iterator[dict[str, RtorrentProcess]]:
    """alice and carol on one disk, bob on another: bob's data shares no disk with
    theirs, so his hanging may delay nothing of theirs (`deletion.peers`)."""
    roots = {"alice": tmp_path, "bob": elsewhere, "carol": tmp_path}
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(make_rtorrent(roots[name] / name, clean_exit=False))
            for name in NAMES
        }


def _fleet_config(directory: Path, rtorrents: dict[str, RtorrentProcess], rules: str) -> None:
    for name, rt in rtorrents.items():
        text = config_text(rules, url=rt.scgi_url, interval="10s", root=str(rt.download_dir))
        _write(directory, name, text)


@pytest.mark.integration
def test_three_instances_one_hangs_then_dies_the_others_go_on(
    tmp_path: Path, three: dict[str, RtorrentProcess], torrent_factory: TorrentFactory
) -> None:
    alice, bob, carol = three.values()
    conf = tmp_path / "conf"
    _fleet_config(conf, three, rule("x", "^x-"))
    doomed = {name: load(rt, torrent_factory, f"x-{name}")[0] for name, rt in three.items()}
    kept = {name: load(rt, torrent_factory, f"k-{name}")[0] for name, rt in three.items()}
    d = RunningDaemon(conf)
    try:
        for name in NAMES:
            d.logs.cursor = 0
            done = d.log("action.done", instance=name, hash=doomed[name].info_hash)
            assert "delete" == done["action"]
        d.note("^READY=1$")
        assert all(gone(three[n], doomed[n]) and not gone(three[n], kept[n]) for n in NAMES)
        assert all("instance" in e for e in d.logs.values() if e["event"].startswith("poll."))

        # bob hangs (stopped: its socket accepts, nothing answers): alice and carol
        # poll and act at once; bob's poll ends only at its 5 s timeout.
        os.kill(bob.pid, signal.SIGSTOP)
        (late_a,), (late_c,) = (
            load(alice, torrent_factory, "x-a2"),
            load(carol, torrent_factory, "x-c2"),
        )
        d.send(signal.SIGUSR1)
        d.log("action.done", instance="alice", hash=late_a.info_hash)
        d.logs.cursor = 0
        d.log("action.done", instance="carol", hash=late_c.info_hash)
        unreachable = d.log("rtorrent.unreachable", instance="bob")
        events = [(e["event"], e.get("instance")) for e in d.logs.values()]
        hung = events.index(("rtorrent.unreachable", "bob"))
        assert events.index(("action.done", "alice")) < hung
        assert "warning" == unreachable["level"]
        d.note(
            rf"^STATUS=3 instances, 1 unreachable \(bob\); bob: rtorrent unreachable since {CLOCK}"
        )

        # bob dies: the others still act, and bob's retries say so without delaying them.
        bob.kill()
        late_c = load(carol, torrent_factory, "x-c3")[0]
        d.send(signal.SIGUSR1)
        d.log("action.done", instance="carol", hash=late_c.info_hash)
        assert gone(carol, late_c)

        # A reload with carol's file broken: alice and bob take theirs, carol keeps hers.
        _fleet_config(conf, {"alice": alice, "bob": bob}, rule("y", "^y-"))
        _write(conf, "carol", "[rtorrent]\nurl = 7\n")
        d.send(signal.SIGHUP)
        rejected = d.log("config.rejected", instance="carol")
        assert str(conf / "carol.toml") in rejected["error"]
        d.logs.cursor = 0
        assert ["y"] == d.log("config.reloaded", instance="alice")["rules_added"]
        d.note("^READY=1$")
        y_a, x_c = load(alice, torrent_factory, "y-a")[0], load(carol, torrent_factory, "x-c4")[0]
        d.send(signal.SIGUSR1)
        d.log("action.done", instance="alice", hash=y_a.info_hash)
        d.logs.cursor = 0
        d.log("action.done", instance="carol", hash=x_c.info_hash, rule="x")
        assert 1 == d.events().count("rtorrent.unreachable")
        d.finish()
        assert all(not gone(three[n], kept[n]) for n in ("alice", "carol"))
    finally:
        d.close()  # the fixture kills bob, stopped or not


def test_each_instance_of_a_directory_keeps_its_own_journal(tmp_path: Path) -> None:
    # Each instance finishes every deletion its journal records: sharing one,
    # an instance would take another's deletions for its own.
    config = parse_config(config_text(), "x")
    env = {"STATE_DIRECTORY": str(tmp_path)}
    assert str(tmp_path / "deleting") == journal_for(config, None, env).directory
    assert str(tmp_path / "roger" / "deleting") == journal_for(config, "roger", env).directory


# --- instances on one disk keep each other's files (issue 14) ----------------------


@pytest.fixture
def neighbours(
    tmp_path: Path,
    elsewhere: Path,
    make_rtorrent: Callable[..., RtorrentProcess],
    rtorrent_version: str,
) -> Iterator[dict[str, RtorrentProcess]]:
    """alice and bob on one disk, of both rtorrent versions; carol on another."""
    other = next(v for v in VERSIONS if v != rtorrent_version)
    with ExitStack() as stack:
        yield {
            "alice": stack.enter_context(make_rtorrent(tmp_path / "alice", clean_exit=False)),
            "bob": stack.enter_context(
                RtorrentProcess(tmp_path / "bob", version=other, clean_exit=False)
            ),
            "carol": stack.enter_context(make_rtorrent(elsewhere / "carol", clean_exit=False)),
        }


def _next_poll_ms(d: RunningDaemon, instance: str) -> int:
    """The duration of `instance`'s next poll, in ms."""
    duration: int = d.log("poll.done", instance=instance)["duration_ms"]
    return duration


@pytest.mark.integration
def test_instances_on_one_disk_keep_each_others_files_and_a_dead_one_holds_up_only_its_disk(
    tmp_path: Path, neighbours: dict[str, RtorrentProcess], torrent_factory: TorrentFactory
) -> None:
    alice, bob, carol = neighbours.values()
    conf = tmp_path / "conf"
    _fleet_config(conf, {"alice": alice, "carol": carol}, rule("x", "^x-"))
    _fleet_config(conf, {"bob": bob}, rule("n", "^never-"))
    # A cross-seed: the same data, at the same path, loaded in alice and in bob.
    shared = torrent_factory("x-shared", random_bytes(3000, "s"), dest_dir=alice.download_dir)
    alice.load(shared)
    bob.load(shared)
    # The same data hard-linked into bob's directory, loaded there.
    data = random_bytes(3000, "l")
    linked = torrent_factory("x-linked", data, dest_dir=alice.download_dir)
    alice.load(linked)
    os.link(linked.payload_path, bob.download_dir / "x-linked")
    bob.load(torrent_factory("x-linked", data, dest_dir=bob.download_dir, write_payload=False))
    (own,), (theirs,) = load(alice, torrent_factory, "x-own"), load(carol, torrent_factory, "x-c")
    kept = {
        shared.payload_path: shared.payload_path.read_bytes(),
        bob.download_dir / "x-linked": data,
    }
    d = RunningDaemon(conf)
    try:
        done = d.log("action.done", instance="alice", hash=shared.info_hash)
        assert [str(shared.payload_path)] == done["kept_shared"]  # bob lists it
        d.logs.cursor = 0
        done = d.log("action.done", instance="alice", hash=linked.info_hash)
        assert (0, None) == (done["freed_bytes"], done["kept_shared"])  # bob's name keeps it
        d.logs.cursor = 0
        d.log("action.done", instance="alice", hash=own.info_hash)
        d.logs.cursor = 0
        d.log("action.done", instance="carol", hash=theirs.info_hash)
        d.note("^READY=1$")
        assert all(path.read_bytes() == content for path, content in kept.items())
        assert 1 == (bob.download_dir / "x-linked").stat().st_nlink
        assert {shared.info_hash, linked.info_hash} <= set(bob.hashes())
        assert not linked.payload_path.exists() and gone(alice, own) and gone(carol, theirs)
        assert "sharing.unlisted_rtorrent" not in d.events()  # bob is known: a neighbour

        # bob hangs (stopped: its socket accepts, nothing answers): alice's deletion
        # waits for him PEER_TIMEOUT at most, then is refused; carol, on another
        # disk, never asks him, and is done before bob's own poll times out.
        os.kill(bob.pid, signal.SIGSTOP)
        (a2,), (c2,) = load(alice, torrent_factory, "x-a2"), load(carol, torrent_factory, "x-c2")
        d.logs.cursor = len(d.logs.values())
        d.send(signal.SIGUSR1)
        refused = d.log("action.refused", instance="alice", hash=a2.info_hash)
        assert "instance bob" in refused["reason"]
        assert _next_poll_ms(d, "alice") < (PEER_TIMEOUT + 2) * 1000
        d.logs.cursor = 0
        d.log("action.done", instance="carol", hash=c2.info_hash)
        d.log("rtorrent.unreachable", instance="bob")
        events = [(e["event"], e.get("instance")) for e in d.logs.values()]
        assert events.index(("action.done", "carol")) < events.index(
            ("rtorrent.unreachable", "bob")
        )

        # bob dies: alice's deletions are refused at once, with the reason; carol's
        # go on; both keep polling.
        bob.kill()
        (a3,), (c3,) = load(alice, torrent_factory, "x-a3"), load(carol, torrent_factory, "x-c3")
        d.logs.cursor = len(d.logs.values())
        d.send(signal.SIGUSR1)
        refused = d.log("action.refused", instance="alice", hash=a3.info_hash)
        assert "the rtorrent of instance bob" in refused["reason"]
        assert "filesystem" in refused["reason"]
        assert _next_poll_ms(d, "alice") < PEER_TIMEOUT * 1000
        d.logs.cursor = 0
        d.log("action.done", instance="carol", hash=c3.info_hash)
        assert not gone(alice, a2) and not gone(alice, a3) and gone(carol, c3)
        d.logs.cursor = len(d.logs.values())
        d.log("poll.done", instance="alice")  # the next on schedule, unasked
        d.finish()
        assert all(path.read_bytes() == content for path, content in kept.items())
    finally:
        d.close()
