"""The snapshot over JSON-RPC (rtorrent 0.15.2+) and its way back to XML-RPC, against
real rtorrents: 0.9.8 has no JSON-RPC and gets XML-RPC; 0.16 gets JSON-RPC, unless
a name in the reply is not UTF-8 (rtorrent then replaces the whole JSON reply with an
error), or JSON-RPC is turned off in rtorrent.rc."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from harness import RtorrentProcess, TorrentFactory, random_bytes, rtorrent_text
from harness.nginx import NginxProcess
from structlog.testing import capture_logs

from rtorrentd.protocol import xmlrpc as rpc
from rtorrentd.protocol.pieces import Pieces
from rtorrentd.rtorrent.client import RtorrentClient, _layout_for, _rows_to_torrents
from rtorrentd.rtorrent.transport import Transport, open_transport
from rtorrentd.rtorrent.wire import XML_AFTER_NOT_UTF8
from rtorrentd.torrent import Torrent
from rtorrentd.vocabulary import FIELDS

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ALL = tuple(FIELDS)
JSON = "application/json"
XML = "XML-RPC"
LATIN1 = b"caf\xe9.bin"  # not UTF-8: 0.9.8 sends 'caf?.bin', 0.16's XML-RPC 'caf%E9.bin'


class Recording:
    """A real transport that notes which protocol each request used."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent: list[str] = []

    @property
    def url(self) -> str:
        return self.inner.url

    async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
        self.sent.append(content_type or XML)
        return await self.inner.request(body, content_type=content_type)

    async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
        self.sent.append(content_type or XML)
        return await self.inner.request_pieces(body, content_type=content_type)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def recording_client(url: str) -> tuple[RtorrentClient, Recording]:
    """A client that has asked for the version already, and its empty record."""
    transport = Recording(open_transport(url, timeout=10.0))
    client = RtorrentClient(transport)
    await client.dialect()
    transport.sent.clear()
    return client, transport


def json_if_any(version: str) -> str:
    """What a snapshot is asked over, on `version`: JSON-RPC from 0.15.2."""
    return XML if version == "0.9.8" else JSON


def steady(torrents: tuple[Torrent, ...]) -> set[Torrent]:
    """The torrents without what may change between two calls (the tracker's answer)."""
    return {replace(t, message=None, seeders=None, leechers=None, scraped=None) for t in torrents}


async def xml_snapshot(client: RtorrentClient, transport: Transport) -> tuple[Torrent, ...]:
    """The snapshot the XML-RPC path makes of the same call."""
    dialect = await client.dialect()
    plan = _layout_for(frozenset(ALL))
    body = rpc.encode_call(dialect.multicall, ["", "main", *plan.commands])
    return _rows_to_torrents(plan, await transport.request(body), dialect, dialect.multicall)


async def test_the_snapshot_goes_over_json_where_rtorrent_has_it(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    download = rtorrent.download_dir
    rtorrent.load(torrent_factory("a.bin", random_bytes(3000, 1), dest_dir=download))
    album: dict[str | bytes, bytes] = {"a.flac": random_bytes(2000, 2), "cd2/b.flac": b"x" * 999}
    rtorrent.load(torrent_factory("album", album, dest_dir=download), start=False)
    client, transport = await recording_client(rtorrent.scgi_url)
    got = await client.snapshot(ALL)
    assert [json_if_any(rtorrent.version)] == transport.sent
    assert {"a.bin", "album"} == {t.name for t in got}
    assert steady(await xml_snapshot(client, transport)) == steady(got)


async def test_names_over_json_are_exact(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # Valid UTF-8 that XML-RPC mangles (a character above U+FFFF), and a literal
    # "%E9" that 0.16's XML-RPC escapes could not be told from.
    name = "film \U0001f3ac caf%E9.bin"
    rtorrent.load(torrent_factory(name, random_bytes(2000, 1), dest_dir=rtorrent.download_dir))
    client, _ = await recording_client(rtorrent.scgi_url)
    (got,) = await client.snapshot(["path"])
    if rtorrent.version == "0.9.8":
        assert rtorrent_text(name, "0.9.8") == got.name == "film ???? caf%E9.bin"
    else:
        assert name == got.name
        assert str(rtorrent.download_dir / name) == got.path


async def test_a_name_that_is_not_utf8_sends_the_snapshot_back_to_xml(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    download = rtorrent.download_dir
    odd = rtorrent.load(torrent_factory(LATIN1, random_bytes(2000, 1), dest_dir=download))
    rtorrent.load(torrent_factory("plain.bin", random_bytes(2000, 2), dest_dir=download))
    client, transport = await recording_client(rtorrent.scgi_url)
    first = json_if_any(rtorrent.version)

    with capture_logs() as logs:
        got = await client.snapshot(ALL)
    # Both torrents, the odd one as a lossy name the deletion path knows to check.
    assert {"caf?.bin", "plain.bin"} == {t.name for t in got}
    if first == JSON:
        assert [JSON, XML] == transport.sent
        (event,) = (e for e in logs if e["event"] == "rtorrent.snapshot_over_xml")
        assert "not UTF-8" in event["reason"]
        assert XML_AFTER_NOT_UTF8 == event["snapshots"]
    else:
        assert [XML] == transport.sent

    # XML-RPC for a while, not two requests each poll...
    transport.sent.clear()
    for _ in range(XML_AFTER_NOT_UTF8):
        assert 2 == len(await client.snapshot(ALL))
    assert [XML] * XML_AFTER_NOT_UTF8 == transport.sent

    # ...then JSON-RPC again, which works once that torrent is gone.
    rtorrent.call("d.erase", odd)
    transport.sent.clear()
    assert ["plain.bin"] == [t.name for t in await client.snapshot(ALL)]
    assert [first] == transport.sent


async def test_json_turned_off_in_rtorrent(
    make_rtorrent: Callable[..., RtorrentProcess],
    rtorrent_version: str,
    tmp_path: Path,
    torrent_factory: TorrentFactory,
) -> None:
    # 0.9.8 knows no such setting (and no JSON-RPC): it runs as it always does.
    off = () if rtorrent_version == "0.9.8" else ("network.rpc.use_jsonrpc.set = false",)
    with make_rtorrent(tmp_path / "rt", extra_config=off, clean_exit=False) as rtorrent:
        one = torrent_factory("one.bin", random_bytes(2000, 1), dest_dir=rtorrent.download_dir)
        rtorrent.load(one)
        client, transport = await recording_client(rtorrent.scgi_url)
        with capture_logs() as logs:
            assert ["one.bin"] == [t.name for t in await client.snapshot(ALL)]
            assert ["one.bin"] == [t.name for t in await client.snapshot(ALL)]
    warnings = [e for e in logs if e["event"] == "rtorrent.json_rpc_off"]
    if rtorrent.version == "0.9.8":
        assert ([XML, XML], []) == (transport.sent, warnings)
    else:
        # Asked once, then never again on this connection.
        assert [JSON, XML, XML] == transport.sent
        (warning,) = warnings
        assert "JSON-RPC not supported" in warning["reason"]


async def test_json_through_nginx(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    nginx: Callable[..., NginxProcess],
) -> None:
    # nginx passes the request's Content-Type on as CONTENT_TYPE (scgi_params).
    download = rtorrent.download_dir
    rtorrent.load(torrent_factory("plain.bin", random_bytes(2000, 1), dest_dir=download))
    proxy = nginx(rtorrent.socket_path, users={"u": "p"})
    client, transport = await recording_client(proxy.url(login="u:p"))
    try:
        direct = await xml_snapshot(client, open_transport(rtorrent.scgi_url))
        assert steady(direct) == steady(await client.snapshot(ALL))
        assert [json_if_any(rtorrent.version)] == transport.sent
        # And the way back to XML-RPC, through nginx too.
        rtorrent.load(torrent_factory(LATIN1, random_bytes(2000, 2), dest_dir=download))
        transport.sent.clear()
        assert {"plain.bin", "caf?.bin"} == {t.name for t in await client.snapshot(ALL)}
        expected = [JSON, XML] if rtorrent.version != "0.9.8" else [XML]
        assert expected == transport.sent
    finally:
        await transport.aclose()
