"""RtorrentClient against a real rtorrent: snapshots, files, faults, multicall."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import flow
import pytest
from harness import (
    RtorrentProcess,
    TorrentFactory,
    make_swarm,
    poll_until,
    random_bytes,
    rtorrent_text,
)

from rtorrentd.errors import (
    RpcFault,
    SessionNotSaved,
    TransportError,
    UnknownMethod,
    UnknownTorrent,
)
from rtorrentd.rtorrent.client import RtorrentClient, command_call
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.torrent import FileEntry, Torrent
from rtorrentd.vocabulary import FIELDS

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ALL = tuple(FIELDS)


def client_for(url: str) -> RtorrentClient:
    return RtorrentClient(open_transport(url, timeout=10.0))


def by_name(torrents: tuple[Torrent, ...]) -> dict[str, Torrent]:
    return {t.name: t for t in torrents}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("d.ratio=", ("d.ratio", ["H"])),
        ("d.custom=addtime", ("d.custom", ["H", "addtime"])),
        ("t.multicall=,t.url=", ("t.multicall", ["H", "", "t.url="])),
    ],
)
def test_command_call(command: str, expected: tuple[str, list[str]]) -> None:
    assert expected == command_call(command, "H")


async def test_every_field_for_single_and_multi_file_torrents(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    download = rtorrent.download_dir
    single = torrent_factory("single.bin", random_bytes(40_000, 1), dest_dir=download)
    multi = torrent_factory(
        "album",
        {"a.flac": random_bytes(30_000, 2), "cd2/b.flac": random_bytes(20_000, 3)},
        dest_dir=download,
    )
    partial = torrent_factory(
        "partial.iso", random_bytes(50_000, 4), dest_dir=download, write_payload=False
    )
    stopped = torrent_factory("stopped.bin", random_bytes(10_000, 5), dest_dir=download)
    before = int(time.time())
    rtorrent.load(single, commands=('d.custom1.set="tv"', "d.custom.set=addtime,1700000000"))
    rtorrent.load(multi)
    rtorrent.load(partial)
    rtorrent.load(stopped, start=False)

    got = by_name(await client_for(rtorrent.scgi_url).snapshot(ALL))

    assert {"single.bin", "album", "partial.iso", "stopped.bin"} == set(got)
    s, m, p, x = got["single.bin"], got["album"], got["partial.iso"], got["stopped.bin"]
    assert (single.info_hash, "tv", str(download), str(download / "single.bin")) == (
        s.hash,
        s.label,
        s.directory,
        s.path,
    )
    assert (False, True, True, True, True, False) == (
        s.multi_file,
        s.complete,
        s.started,
        s.active,
        s.open,
        s.private,
    )
    assert (0.0, 40_000, 40_000, 0, 0) == (s.ratio, s.size, s.done, s.uploaded, s.downloaded)
    assert 1700000000 == s.added
    assert s.finished is not None and s.finished >= before - 1
    assert (None, None, ("127.0.0.1",)) == (s.seeders, s.leechers, s.trackers)
    assert (str(download / "album"), str(download / "album"), True, 50_000) == (
        m.directory,
        m.path,
        m.multi_file,
        m.size,
    )
    assert m.added is not None and m.added >= before - 1
    assert (False, True, None, 0) == (p.complete, p.started, p.finished, p.done)
    # Loaded stopped and never opened: no hash check, no base path (RTORRENT.md),
    # so the path is rebuilt from d.directory and the name.
    assert (False, False, str(download / "stopped.bin")) == (x.started, x.open, x.path)


async def test_snapshot_fetches_only_identity_by_default(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    rtorrent.load(torrent_factory("one.bin", random_bytes(1000, 1), dest_dir=rtorrent.download_dir))
    (t,) = await client_for(rtorrent.scgi_url).snapshot()
    assert ("one.bin", True, 1000, None, None) == (t.name, t.complete, t.size, t.ratio, t.path)


async def test_tcp_transport_gives_the_same_snapshot(
    rtorrent_tcp: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    rtorrent_tcp.load(
        torrent_factory("t.bin", random_bytes(5000, 1), dest_dir=rtorrent_tcp.download_dir)
    )
    (t,) = await client_for(rtorrent_tcp.tcp_url).snapshot(["ratio", "path"])
    assert ("t.bin", 0.0, str(rtorrent_tcp.download_dir / "t.bin")) == (t.name, t.ratio, t.path)


async def test_odd_names_do_not_hide_other_torrents(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    download = rtorrent.download_dir
    for name, seed in (
        ("normal.bin", 1),
        ("odd\x01name.bin", 2),
        (b"caf\xe9.bin", 3),
        ("z.bin", 4),
    ):
        rtorrent.load(torrent_factory(name, random_bytes(2000, seed), dest_dir=download))
    got = await client_for(rtorrent.scgi_url).snapshot(["path"])
    assert {"normal.bin", "odd\x01name.bin", "caf?.bin", "z.bin"} == {t.name for t in got}


async def test_files_of_a_torrent(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    multi = torrent_factory(
        "album",
        {"a.flac": random_bytes(300, 1), "cd2/b.flac": random_bytes(200, 2)},
        dest_dir=rtorrent.download_dir,
    )
    rtorrent.load(multi)
    client = client_for(rtorrent.scgi_url)
    expected = (FileEntry("a.flac", 300), FileEntry("cd2/b.flac", 200))
    assert expected == await client.files(multi.info_hash)
    assert {multi.info_hash: expected} == await client.all_files([multi.info_hash, "0" * 40])


async def test_torrent_by_hash_matches_the_snapshot(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    one = torrent_factory("one.bin", random_bytes(3000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(one, commands=("d.custom.set=addtime,1700000000",))
    client = client_for(rtorrent.scgi_url)
    (listed,) = await client.snapshot(ALL)
    fresh = await client.torrent(one.info_hash.lower(), ALL)
    # The tracker message may arrive between the two calls; the rest is the same.
    assert replace(listed, message="") == replace(fresh, message="")


async def test_faults(rtorrent: RtorrentProcess) -> None:
    client = client_for(rtorrent.scgi_url)
    # 0.9.8's words, and 0.16's.
    with pytest.raises(UnknownTorrent, match=r"Could not find info-hash|info-hash not found"):
        await client.call("d.name", "0" * 40)
    with pytest.raises(UnknownTorrent):
        await client.torrent("0" * 40, ["ratio"])
    with pytest.raises(UnknownMethod, match="-506"):
        await client.call("no.such.method")
    with pytest.raises(RpcFault, match="-503"):
        await client.call("d.name", "")


async def test_multicall_keeps_faults_in_place_and_batches(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    one = torrent_factory("one.bin", random_bytes(1000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(one)
    client = RtorrentClient(open_transport(rtorrent.scgi_url), batch_bytes=300)
    calls = [
        ("d.name", [one.info_hash]),
        ("d.name", ["0" * 40]),
        ("nope", []),
        ("d.size_bytes", [one.info_hash]),
    ] * 3
    results = await client.multicall(calls)
    assert 12 == len(results)
    for i in range(0, 12, 4):
        name, gone, nope, size = results[i : i + 4]
        assert ("one.bin", 1000) == (name, size)
        assert isinstance(gone, UnknownTorrent)
        assert isinstance(nope, UnknownMethod)


async def test_stop_close_erase(rtorrent: RtorrentProcess, torrent_factory: TorrentFactory) -> None:
    one = torrent_factory("one.bin", random_bytes(1000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(one)
    client = client_for(rtorrent.scgi_url)
    await client.stop(one.info_hash)
    await client.close(one.info_hash)
    t = await client.torrent(one.info_hash)
    assert (False, False) == (t.started, t.open)
    await client.erase(one.info_hash)
    assert () == await client.snapshot()
    assert (rtorrent.download_dir / "one.bin").exists()  # d.erase never deletes data


async def test_real_swarm_raises_ratio(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    seeder, leecher = rtorrent_pair
    popular = torrent_factory(
        "popular.bin", random_bytes(2_000_000, 7), dest_dir=seeder.download_dir
    )
    make_swarm(seeder, leecher, popular)
    (t,) = await client_for(seeder.scgi_url).snapshot(["ratio", "uploaded", "trackers"])
    assert t.ratio is not None and t.ratio >= 1.0
    assert t.uploaded is not None and t.uploaded >= 2_000_000


async def test_the_version_is_asked_once(rtorrent: RtorrentProcess) -> None:
    client = client_for(rtorrent.scgi_url)
    dialect = await client.dialect()
    assert dialect.text == rtorrent.call("system.client_version")
    assert dialect.text.startswith(rtorrent.version)
    # 0.16.17 lists torrents with d.multicall; 0.9.8 has only d.multicall2.
    assert {"0.9.8": "d.multicall2", "0.16": "d.multicall"}[rtorrent.version] == dialect.multicall
    assert dialect is await client.dialect()


async def test_odd_file_names_in_the_lossy_form(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    album = torrent_factory(
        "album", {b"caf\xe9.flac": random_bytes(300, 1), "b.flac": random_bytes(200, 2)}
    )
    rtorrent.load(album)
    raw = rtorrent.call("f.multicall", album.info_hash, "", "f.path=")
    assert [[rtorrent_text(b"caf\xe9.flac", rtorrent.version)], ["b.flac"]] == raw
    client = client_for(rtorrent.scgi_url)
    expected = (FileEntry("caf?.flac", 300), FileEntry("b.flac", 200))
    assert expected == await client.files(album.info_hash)
    assert {album.info_hash: expected} == await client.all_files([album.info_hash])


async def test_a_saved_session_survives_sigkill(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # The executor's order: stop, close, save, then (here) the worst moment to die.
    # 0.16 saves in the background: without the wait the torrent comes back started.
    one = torrent_factory("one.bin", random_bytes(1000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(one, commands=("d.custom.set=addtime,1700000000",))
    client = client_for(rtorrent.scgi_url)
    await client.stop(one.info_hash)
    await client.close(one.info_hash)
    await client.call("d.custom.set", one.info_hash, "mark", "saved")
    await client.save_session(one.info_hash.lower())
    rtorrent.restart(clean=False)
    assert [0, 0, "saved"] == [
        rtorrent.call("d.state", one.info_hash),
        rtorrent.call("d.is_open", one.info_hash),
        rtorrent.call("d.custom", one.info_hash, "mark"),
    ]


async def test_a_session_rtorrentd_cannot_see_is_not_called_saved(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    one = torrent_factory("one.bin", random_bytes(1000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(one)
    # As if rtorrent ran elsewhere (another machine, a container): its session.path
    # names no directory here.
    rtorrent.session_dir.rename(rtorrent.root / "moved")
    client = client_for(rtorrent.scgi_url)
    if rtorrent.version == "0.9.8":
        await client.save_session(one.info_hash)  # written before the reply, if at all
    else:
        with pytest.raises(SessionNotSaved, match="cannot see"):
            await client.save_session(one.info_hash)


async def test_the_version_is_asked_again_after_a_restart(rtorrent: RtorrentProcess) -> None:
    client = client_for(rtorrent.scgi_url)
    first = await client.dialect()
    rtorrent.kill()
    with pytest.raises(TransportError):
        await client.call("system.pid")
    rtorrent.start()
    assert first is not await client.dialect()
    assert first == await client.dialect()


async def test_gzipped_replies_give_the_same_snapshot(
    rtorrent_tcp: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # 0.16 gzips a reply of 1000 bytes or more when asked; 0.9.8 ignores the asking.
    for i in range(20):
        rtorrent_tcp.load(
            torrent_factory(
                f"t{i:02}.bin", random_bytes(500, i), dest_dir=rtorrent_tcp.download_dir
            )
        )
    plain = RtorrentClient(open_transport(rtorrent_tcp.tcp_url, gzip=False))
    packed = RtorrentClient(open_transport(rtorrent_tcp.tcp_url, gzip=True))
    assert 20 == len(await plain.snapshot(ALL))
    # The tracker message may arrive between the calls; the rest is the same.
    first, second = await plain.snapshot(ALL), await packed.snapshot(ALL)
    assert {t.name: replace(t, message="") for t in first} == {
        t.name: replace(t, message="") for t in second
    }


async def test_the_documented_message_rule_matches_both_wordings(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # libcurl's words for a dead tracker changed between the versions (README: match
    # the part both share).
    dead = torrent_factory("dead.bin", random_bytes(1000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(dead)
    message = poll_until(
        lambda: rtorrent.call("d.message", dead.info_hash), timeout=30, what="the announce to fail"
    )
    wording = {"0.9.8": "Couldn't", "0.16": "Could not"}[rtorrent.version]
    assert f"Tracker: [{wording} connect to server]" == message
    rule = ("dead tracker", 'message ~ "connect to server"', "stop")
    config = flow.config_for(rtorrent, [rtorrent.download_dir], [rule])
    result = await flow.poll(flow.client_for(rtorrent), config, dry_run=True)
    assert [(dead.info_hash, "dead tracker")] == [
        (r.step.hash, r.step.rule) for r in result.results
    ]
