"""The integration harness works: real rtorrent, real torrents, a real swarm."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path

import harness.rtorrent
import pytest
from harness import (
    RtorrentProcess,
    TorrentFactory,
    bencode,
    make_swarm,
    make_torrent,
    random_bytes,
    rtorrent_text,
)
from hypothesis import given
from hypothesis import strategies as st

MULTICALL_NAMES = ("d.multicall2", "", "main", "d.hash=", "d.name=")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- bencode ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"i0e"),
        (-42, b"i-42e"),
        (2**40, b"i1099511627776e"),
        ("spam", b"4:spam"),
        ("café", b"5:caf\xc3\xa9"),
        (b"caf\xe9", b"4:caf\xe9"),
        (b"", b"0:"),
        ([1, "a", [b"b"]], b"li1e1:al1:bee"),
        ({"b": 1, "a": 2}, b"d1:ai2e1:bi1ee"),
        ({b"\xff": 1, "z": 2}, b"d1:zi2e1:\xffi1ee"),
        ({}, b"de"),
    ],
)
def test_bencode(value: object, expected: bytes) -> None:
    assert expected == bencode(value)  # type: ignore[arg-type]


@given(st.dictionaries(st.binary(max_size=8), st.integers(), max_size=8))
def test_bencode_dict_is_independent_of_insertion_order(items: dict[bytes, int]) -> None:
    assert bencode(items) == bencode(dict(reversed(list(items.items()))))


@pytest.mark.parametrize("value", [True, 1.5, None, {1: 2}])
def test_bencode_refuses_what_bencoding_cannot_say(value: object) -> None:
    with pytest.raises(TypeError):
        bencode(value)  # type: ignore[arg-type]


# -- torrents --------------------------------------------------------------


def test_single_file_torrent(tmp_path: Path) -> None:
    payload = random_bytes(40_000, seed=1)
    torrent = make_torrent(tmp_path, "one.bin", payload, piece_length=16384)
    info = bencode(
        {
            "length": 40_000,
            "name": "one.bin",
            "piece length": 16384,
            "pieces": b"".join(
                hashlib.sha1(payload[i : i + 16384]).digest() for i in range(0, 40_000, 16384)
            ),
        }
    )
    assert hashlib.sha1(info).hexdigest().upper() == torrent.info_hash
    assert info in torrent.data
    assert payload == (tmp_path / "one.bin").read_bytes()
    assert tmp_path / "one.bin" == torrent.payload_path
    assert (False, 40_000, 1) == (torrent.multi_file, torrent.size, len(torrent.files))


def test_multi_file_torrent(tmp_path: Path) -> None:
    torrent = make_torrent(tmp_path, "pack", {"a.txt": b"hello", "sub/b.bin": bytes(100)})
    assert b"4:infod5:filesld6:lengthi5e4:pathl5:a.txteed6:lengthi100e4:pathl3:sub5:b.bineee" in (
        torrent.data
    )
    assert b"hello" == (tmp_path / "pack" / "a.txt").read_bytes()
    assert bytes(100) == (tmp_path / "pack" / "sub" / "b.bin").read_bytes()
    assert (True, 105, ("a.txt", "sub/b.bin")) == (
        torrent.multi_file,
        torrent.size,
        tuple(entry.path for entry in torrent.files),
    )


def test_torrents_are_deterministic(tmp_path: Path) -> None:
    first = make_torrent(tmp_path / "1", "x.bin", random_bytes(5000, seed="x"))
    second = make_torrent(tmp_path / "2", "x.bin", random_bytes(5000, seed="x"))
    assert (first.data, first.info_hash) == (second.data, second.info_hash)


def test_incomplete_torrent_writes_nothing(tmp_path: Path) -> None:
    torrent = make_torrent(tmp_path, "later.bin", b"x" * 100, write_payload=False)
    assert [] == list(tmp_path.iterdir())
    assert not torrent.payload_written


def test_odd_names_are_written_with_their_real_bytes(tmp_path: Path) -> None:
    make_torrent(tmp_path, b"caf\xe9.bin", b"latin-1")
    make_torrent(tmp_path, "odd\x01name.bin", b"control")
    assert {b"caf\xe9.bin", b"odd\x01name.bin"} == set(os.listdir(os.fsencode(tmp_path)))


@pytest.mark.parametrize(
    ("name", "on_0_9_8", "on_0_16"),
    [
        ("plain.bin", "plain.bin", "plain.bin"),
        (b"caf\xe9.bin", "caf?.bin", "caf%E9.bin"),
        ("café".encode(), "café", "café"),
        # What rtorrent really sent for each of these (RTORRENT.md).
        ("😀x.bin", "????x.bin", "%F0%9F%98%80x.bin"),
        (b"a\x01\xe9.bin", "a??.bin", "a%01%E9.bin"),
        (b"\xe9%41.bin", "?%41.bin", "%E9%41.bin"),
        ("\ufffe.bin", "???.bin", "%EF%BF%BE.bin"),
        ("a\rb.bin", "a\nb.bin", "a\nb.bin"),
        ("é\x7f.bin", "é\x7f.bin", "é\x7f.bin"),
    ],
)
def test_rtorrent_text(name: str | bytes, on_0_9_8: str, on_0_16: str) -> None:
    assert (on_0_9_8, on_0_9_8, on_0_16) == (
        rtorrent_text(name),
        rtorrent_text(name, "0.9.8"),
        rtorrent_text(name, "0.16"),
    )


# -- rtorrent --------------------------------------------------------------

# What each version answers for an info-hash it does not have (RTORRENT.md).
UNKNOWN_HASH_FAULTS = {
    "0.9.8": (-501, "Could not find info-hash."),
    "0.16": (-503, "invalid parameters: info-hash not found"),
}


@pytest.mark.integration
def test_rtorrent_starts_and_answers(rtorrent: RtorrentProcess) -> None:
    # rtorrent does not fork as a daemon: the child we started is rtorrent itself.
    assert rtorrent.pid == rtorrent.call("system.pid")
    reported = rtorrent.call("system.client_version")
    assert reported == rtorrent.version or reported.startswith(f"{rtorrent.version}.")
    assert rtorrent.listen_port == rtorrent.call("network.listen.port")
    assert f"scgi://{rtorrent.socket_path}" == rtorrent.scgi_url
    assert rtorrent.scgi_url.startswith("scgi:///")
    assert rtorrent.start_seconds < 5.0


@pytest.mark.integration
def test_rtorrent_over_tcp(rtorrent_tcp: RtorrentProcess) -> None:
    assert f"scgi://127.0.0.1:{rtorrent_tcp.tcp_port}" == rtorrent_tcp.tcp_url
    assert rtorrent_tcp.pid == rtorrent_tcp.call("system.pid")
    assert not rtorrent_tcp.socket_path.exists()


@pytest.mark.integration
def test_faults_come_back_as_faults(rtorrent: RtorrentProcess) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        rtorrent.call("d.name", "0" * 40)
    assert UNKNOWN_HASH_FAULTS[rtorrent.version] == (
        caught.value.faultCode,
        caught.value.faultString,
    )


@pytest.mark.integration
def test_loads_every_kind_of_torrent(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    torrents = {
        "single": torrent_factory("single.bin", random_bytes(100_000, seed=1)),
        "multi": torrent_factory("multi", {"a.txt": b"a", "sub/b.bin": random_bytes(50_000)}),
        "incomplete": torrent_factory("incomplete.bin", bytes(40_000), write_payload=False),
        "stopped": torrent_factory("stopped.bin", random_bytes(30_000, seed=2)),
        "control": torrent_factory("odd\x01name.bin", random_bytes(1000, seed=3)),
        "latin1": torrent_factory(b"caf\xe9.bin", random_bytes(1000, seed=4)),
    }
    for kind, torrent in torrents.items():
        rtorrent.load(
            torrent,
            start=kind != "stopped",
            complete=None if kind == "stopped" else kind != "incomplete",
            commands=[f"d.custom.set=kind,{kind}"],
        )

    listed = {h: (name, kind) for h, name, kind in rtorrent.call(*MULTICALL_NAMES, "d.custom=kind")}
    # The control character is replaced by the harness's tolerant decoder.
    expected_names = {
        kind: t.reported_name(rtorrent.version).replace("\x01", "\ufffd")
        for kind, t in torrents.items()
    }
    assert {t.info_hash: (expected_names[k], k) for k, t in torrents.items()} == listed
    states = rtorrent.call("d.multicall2", "", "main", "d.custom=kind", "d.state=", "d.complete=")
    assert {
        ("single", 1, 1),
        ("multi", 1, 1),
        ("incomplete", 1, 0),
        ("stopped", 0, 0),
        ("control", 1, 1),
        ("latin1", 1, 1),
    } == {tuple(row) for row in states}


@pytest.mark.integration
def test_control_character_is_sent_raw(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    rtorrent.load(torrent_factory("odd\x01name.bin", b"x" * 100), complete=True)
    assert b"odd\x01name.bin" in rtorrent.call_raw(*MULTICALL_NAMES)


@pytest.mark.integration
def test_non_utf8_name_is_reported_mangled(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    torrent = torrent_factory(b"caf\xe9.bin", b"latin-1 name")
    info_hash = rtorrent.load(torrent, complete=True)
    reported = rtorrent.call("d.base_path", info_hash)
    shown = {"0.9.8": "caf?.bin", "0.16": "caf%E9.bin"}[rtorrent.version]
    assert shown == rtorrent.call("d.name", info_hash)
    assert str(torrent.directory / shown) == reported
    # The path rtorrent reports names no file; the real one keeps its bytes.
    assert not Path(reported).exists()
    assert torrent.payload_path.exists()


@pytest.mark.integration
def test_load_applies_extra_commands(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    torrent = torrent_factory("labelled.bin", b"x" * 100)
    info_hash = rtorrent.load(
        torrent, commands=["d.custom.set=addtime,1700000000", "d.custom1.set=tv"]
    )
    assert ["1700000000", "tv", str(torrent.payload_path)] == [
        rtorrent.call("d.custom", info_hash, "addtime"),
        rtorrent.call("d.custom1", info_hash),
        rtorrent.call("d.base_path", info_hash),
    ]


@pytest.mark.integration
def test_load_into_another_directory(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    torrent = torrent_factory("pack", {"a.txt": b"a"}, write_payload=False)
    info_hash = rtorrent.load(torrent, start=False, directory=rtorrent.download_dir)
    assert str(rtorrent.download_dir / "pack") == rtorrent.call("d.directory", info_hash)


@pytest.mark.integration
def test_swarm_raises_the_seeders_ratio(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess],
    torrent_factory: TorrentFactory,
    record_property: Callable[[str, object], None],
) -> None:
    seeder, leecher = rtorrent_pair
    torrent = torrent_factory("swarm.bin", random_bytes(4_000_000, seed=7), piece_length=65536)
    result = make_swarm(seeder, leecher, torrent, timeout=60)
    record_property("swarm_seconds", round(result.seconds, 3))
    assert result.seeder_ratio >= 1000
    assert result.seeder_up_total >= torrent.size
    assert torrent.size == leecher.call("d.down.total", torrent.info_hash)
    assert (leecher.download_dir / "swarm.bin").read_bytes() == torrent.payload_path.read_bytes()


@pytest.mark.integration
def test_restart_keeps_torrents_and_forgets_base_path_of_stopped_ones(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    stopped = torrent_factory("pack", {"sub/a.txt": b"a" * 100})
    running = torrent_factory("running.bin", b"r" * 100)
    stopped_hash = rtorrent.load(stopped, complete=True)
    running_hash = rtorrent.load(running, complete=True)
    rtorrent.call("d.stop", stopped_hash)
    # Stopped but still open: the path is known until rtorrent restarts.
    assert str(stopped.payload_path) == rtorrent.call("d.base_path", stopped_hash)
    old_pid = rtorrent.pid

    rtorrent.restart()

    assert old_pid != rtorrent.pid and _gone(old_pid)
    assert {stopped_hash, running_hash} == set(rtorrent.hashes())
    assert ["", str(stopped.payload_path), 0, 0] == [
        rtorrent.call("d.base_path", stopped_hash),
        rtorrent.call("d.directory", stopped_hash),
        rtorrent.call("d.state", stopped_hash),
        rtorrent.call("d.is_open", stopped_hash),
    ]
    assert [["sub/a.txt", 100]] == rtorrent.call(
        "f.multicall", stopped_hash, "", "f.path=", "f.size_bytes="
    )
    assert str(running.payload_path) == rtorrent.call("d.base_path", running_hash)


@pytest.mark.integration
def test_restart_after_kill(rtorrent: RtorrentProcess, torrent_factory: TorrentFactory) -> None:
    info_hash = rtorrent.load(torrent_factory("crash.bin", b"c" * 100), complete=True)
    rtorrent.restart(clean=False)
    assert [info_hash] == rtorrent.hashes()


# -- reaping ---------------------------------------------------------------


@pytest.fixture
def pids_reaped_afterwards() -> Iterator[list[int]]:
    """Set up before ``rtorrent``, so it checks after that fixture is torn down."""
    pids: list[int] = []
    yield pids
    assert pids and all(_gone(pid) for pid in pids)


@pytest.mark.integration
def test_fixture_reaps_rtorrent(
    pids_reaped_afterwards: list[int], rtorrent: RtorrentProcess
) -> None:
    pids_reaped_afterwards.append(rtorrent.pid)


@pytest.mark.integration
def test_context_manager_reaps_rtorrent_on_error(
    tmp_path: Path, make_rtorrent: Callable[..., RtorrentProcess]
) -> None:
    process = make_rtorrent(tmp_path / "rt")
    with pytest.raises(RuntimeError, match="boom"), process:
        pid = process.pid
        raise RuntimeError("boom")
    assert _gone(pid) and not process.running


@pytest.mark.integration
def test_kill_reaps_at_once(tmp_path: Path, make_rtorrent: Callable[..., RtorrentProcess]) -> None:
    with make_rtorrent(tmp_path / "rt") as process:
        pid = process.pid
        began = time.monotonic()
        process.kill()
        assert _gone(pid) and time.monotonic() - began < 1.0


@pytest.mark.integration
def test_start_picks_another_port_when_its_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_rtorrent: Callable[..., RtorrentProcess]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        real_free_port = harness.rtorrent.free_port
        monkeypatch.setattr(harness.rtorrent, "free_port", lambda: next(ports, real_free_port()))
        with make_rtorrent(tmp_path / "rt", clean_exit=False) as process:
            assert taken.getsockname()[1] != process.listen_port
            assert process.listen_port == process.call("network.listen.port")


@pytest.mark.integration
def test_gzip_when_asked_on_0_16_only(rtorrent: RtorrentProcess) -> None:
    body = xmlrpc.client.dumps((), "system.listMethods").encode()
    headers = b"CONTENT_LENGTH\x00%d\x00SCGI\x001\x00ACCEPT_ENCODING\x00gzip\x00" % len(body)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(rtorrent.socket_path))
        sock.sendall(b"%d:%s,%s" % (len(headers), headers, body))
        reply = b"".join(iter(lambda: sock.recv(1 << 16), b""))
    head, _, xml = reply.partition(b"\r\n\r\n")
    # No Content-Encoding either way: the body's first bytes tell.
    assert b"Content-Encoding" not in head
    if rtorrent.version == "0.9.8":
        assert xml.startswith(b"<?xml")
    else:
        assert b"<methodResponse>" in gzip.decompress(xml)


def test_each_version_has_its_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rtorrent_version: str
) -> None:
    # `make test` fetched 0.16 into the cache; a cache without it says what to run.
    assert os.access(harness.rtorrent.rtorrent_binary(rtorrent_version), os.X_OK)
    monkeypatch.setenv("RTORRENTD_CACHE", str(tmp_path))
    if rtorrent_version == "0.16":
        with pytest.raises(harness.rtorrent.HarnessError, match="run `make test`"):
            harness.rtorrent.rtorrent_binary(rtorrent_version)
    with pytest.raises(ValueError, match=r"unknown rtorrent version '0\.12'"):
        harness.rtorrent.rtorrent_binary("0.12")
