"""A connection that rtorrent 0.16.9+ deems untrusted: nginx passes
``UNTRUSTED_CONNECTION 1`` (as a browser-facing set-up for ruTorrent does), and
rtorrent then runs only the commands it marks safe. 0.9.8 ignores the parameter.

What rtorrent allows there was measured against the real 0.16: reading the usual
fields, `d.pause`, `d.close`, `d.erase`; not `d.stop`, `d.start`, nor some fields
(`d.ignore_commands`; `d.timestamp.started` before 0.16.19). rtorrentd does not stand
in `d.pause` + `d.close` for `d.stop`: d.state stays 1, so rtorrent starts the
torrent again when it restarts, and the tracker is not told the torrent stopped
(`test_pause_and_close_are_not_a_stop`). It refuses, and says what to configure.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from harness import RtorrentProcess, TorrentFactory, poll_until, random_bytes
from harness.nginx import NginxProcess

from rtorrentd.config.load import parse_config
from rtorrentd.deletion.results import Result
from rtorrentd.engine.memory import Memory
from rtorrentd.errors import UntrustedCommand
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import poll_once

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

StartNginx = Callable[..., NginxProcess]
USERS = {"rtorrentd": "secret"}
LOGIN = "rtorrentd:secret"
UNTRUSTED = (("UNTRUSTED_CONNECTION", "1"),)


@contextlib.asynccontextmanager
async def through(
    nginx: StartNginx, rtorrent: RtorrentProcess, params: Sequence[tuple[str, str]]
) -> AsyncIterator[RtorrentClient]:
    """A client through a fresh nginx that passes `params` to rtorrent."""
    proxy = nginx(rtorrent.socket_path, users=USERS, scgi_params=params)
    transport = open_transport(proxy.url(login=LOGIN), timeout=10.0)
    try:
        yield RtorrentClient(transport)
    finally:
        await transport.aclose()


def seeding(rtorrent: RtorrentProcess, torrent_factory: TorrentFactory) -> str:
    """A complete, started torrent; its info-hash."""
    one = torrent_factory("one.bin", random_bytes(2000, 1), dest_dir=rtorrent.download_dir)
    return rtorrent.load(one, complete=True)


def state(rtorrent: RtorrentProcess, info_hash: str) -> list[int]:
    """[d.state, d.is_active, d.is_open], asked on a trusted connection."""
    return [rtorrent.call(c, info_hash) for c in ("d.state", "d.is_active", "d.is_open")]


async def test_stop_is_refused_with_what_to_configure(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    info_hash = seeding(rtorrent, torrent_factory)
    async with through(nginx, rtorrent, UNTRUSTED) as client:
        # Reading works: the fields every poll asks for are safe ones.
        (torrent,) = await client.snapshot(["ratio", "label", "finished", "size"])
        assert (info_hash, True) == (torrent.hash, torrent.started)
        if rtorrent.version == "0.9.8":
            await client.stop(info_hash)
            assert [0, 0, 1] == state(rtorrent, info_hash)
            return
        with pytest.raises(UntrustedCommand) as caught:
            await client.stop(info_hash)
    assert "d.stop" == caught.value.command
    assert str(caught.value).startswith(
        "rtorrent refused d.stop: this connection is marked untrusted (UNTRUSTED_CONNECTION=1"
    )
    assert "scgi_param UNTRUSTED_CONNECTION 0;" in str(caught.value)
    assert [1, 1, 1] == state(rtorrent, info_hash)  # untouched


async def test_file_lists_are_read_where_d_size_files_is_refused(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    # 0.16 refuses d.size_files over an untrusted connection (f.multicall it allows):
    # each torrent is then read whole, as one f.multicall lists it.
    album = torrent_factory("album", {f"{i:02d}.flac": random_bytes(100 + i, i) for i in range(12)})
    rtorrent.load(album)
    trusted = RtorrentClient(open_transport(rtorrent.scgi_url, timeout=10.0), files_per_call=5)
    expected = await trusted.files(album.info_hash)
    assert 12 == len(expected)
    async with through(nginx, rtorrent, UNTRUSTED) as client:
        client.files_per_call = 5
        counts = await client.file_counts([album.info_hash])
        assert {album.info_hash: None if rtorrent.version != "0.9.8" else 12} == counts
        assert expected == await client.files(album.info_hash)
        assert {album.info_hash: expected} == await client.all_files([album.info_hash, "0" * 40])


async def test_a_field_rtorrent_will_not_read_is_named(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    info_hash = seeding(rtorrent, torrent_factory)
    async with through(nginx, rtorrent, UNTRUSTED) as client:
        if rtorrent.version == "0.9.8":
            (torrent,) = await client.snapshot(["ignored"])
            assert (False, False) == (
                torrent.ignored,
                (await client.torrent(info_hash, ["ignored"])).ignored,
            )
            return
        # Both ways of reading: the snapshot (one JSON-RPC call) and one torrent's
        # values (system.multicall over XML-RPC, where each call fails in place).
        with pytest.raises(UntrustedCommand, match=r"^rtorrent refused d\.ignore_commands: "):
            await client.snapshot(["ignored"])
        with pytest.raises(UntrustedCommand, match=r"^rtorrent refused d\.ignore_commands: "):
            await client.torrent(info_hash, ["ignored"])


async def test_the_fix_in_the_message_works(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, nginx: StartNginx
) -> None:
    # The location keeps the line that marks it untrusted, and overrides it after.
    info_hash = seeding(rtorrent, torrent_factory)
    params = (*UNTRUSTED, ("UNTRUSTED_CONNECTION", "0"))
    async with through(nginx, rtorrent, params) as client:
        await client.stop(info_hash)
        await client.close(info_hash)
    assert [0, 0, 0] == state(rtorrent, info_hash)


@pytest.mark.parametrize("action", ["stop", "delete", "remove"])
async def test_rules_over_an_untrusted_connection(
    action: str,
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    nginx: StartNginx,
    tmp_path: Path,
) -> None:
    info_hash = seeding(rtorrent, torrent_factory)
    data = rtorrent.download_dir / "one.bin"
    proxy = nginx(rtorrent.socket_path, users=USERS, scgi_params=UNTRUSTED)
    text = f"""\
[rtorrent]
url = "{proxy.url(login=LOGIN)}"
timeout = "10s"
[daemon]
dry_run = false
[safety]
allowed_roots = ["{rtorrent.download_dir}"]
max_delete_fraction = 1
[[rule]]
name = "enough"
when = 'name == "one.bin"'
action = "{action}"
"""
    config = parse_config(text, str(tmp_path / "config.toml"))
    transport = open_transport(config.rtorrent.url, timeout=10.0)
    try:
        result = await poll_once(
            RtorrentClient(transport), config, Memory.empty(), dry_run=False, now=time.time()
        )
    finally:
        await transport.aclose()
    (step,) = result.results
    if rtorrent.version == "0.9.8":
        assert (Result.DONE, action == "delete") == (step.result, not data.exists())
        assert (action == "stop") == (info_hash in rtorrent.hashes())
    else:
        # Refused (d.stop, a command read before d.erase, or system.time, which a
        # deletion's sharing check reads first): the step says which and what to
        # configure; the data and the torrent are as they were.
        assert Result.FAILED == step.result
        assert re.match(
            r"rtorrent refused (d|system)\.\S+: this connection is marked untrusted",
            step.reason,
        )
        assert [1, 1, 1] == state(rtorrent, info_hash)
        assert data.exists()


async def test_pause_and_close_are_not_a_stop(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # What an untrusted connection could do instead of d.stop, on a trusted one here
    # (0.9.8 has both commands too): the torrent is still "started" (d.state 1)...
    info_hash = seeding(rtorrent, torrent_factory)
    rtorrent.call("d.pause", info_hash)
    rtorrent.call("d.close", info_hash)
    assert [1, 0, 0] == state(rtorrent, info_hash)
    # ...and seeds again after rtorrent restarts (a clean shutdown saves the session).
    rtorrent.restart()
    poll_until(lambda: info_hash in rtorrent.hashes(), timeout=15, what="the torrent loaded")
    poll_until(
        lambda: state(rtorrent, info_hash) == [1, 1, 1], timeout=15, what="the torrent seeding"
    )
