"""File lists read in calls of bounded size (issue 15.4), against a real rtorrent.

No call lists more than `files_per_call` files: torrents are grouped by their file
counts, and one torrent with more files is read in ranges (`<hash>:f<index>`).
The result is what one `f.multicall` per torrent gives.
"""

from __future__ import annotations

import pytest
from harness import RtorrentProcess, TorrentFactory, TorrentFile, rtorrent_text

from rtorrentd.errors import UnknownTorrent
from rtorrentd.protocol import xmlrpc as rpc
from rtorrentd.protocol.pieces import Pieces
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.file_lists import by_files
from rtorrentd.rtorrent.transport import Transport, open_transport
from rtorrentd.torrent import FileEntry

PER_CALL = 1_000


class Listing:
    """A real transport that notes how many files each request made rtorrent list."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.listed: list[int] = []

    @property
    def url(self) -> str:
        return self.inner.url

    async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
        reply = await self.inner.request(body, content_type=content_type)
        if b"<string>f.multicall</string>" in body:
            # system.multicall of f.multicalls: each result is [rows].
            results = rpc.decode_response(reply)
            assert isinstance(results, list)
            self.listed.append(sum(len(result[0]) for result in results))
        elif b"<string>f.path</string>" in body:
            self.listed.append(body.count(b"<string>f.path</string>"))
        elif b"<methodName>f.multicall</methodName>" in body:
            rows = rpc.decode_response(reply)
            assert isinstance(rows, list)
            self.listed.append(len(rows))
        return reply

    async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
        return Pieces((await self.request(body, content_type=content_type),))

    async def aclose(self) -> None:
        await self.inner.aclose()


def clients(url: str) -> tuple[RtorrentClient, Listing, RtorrentClient]:
    """A client that lists at most PER_CALL files a call (and its transport), and
    one that lists every torrent in one call."""
    listing = Listing(open_transport(url, timeout=30.0))
    one_call = RtorrentClient(open_transport(url, timeout=30.0), files_per_call=10**9)
    return RtorrentClient(listing, files_per_call=PER_CALL), listing, one_call


def many_files(
    factory: TorrentFactory, name: str, count: int, where: RtorrentProcess
) -> TorrentFile:
    """A torrent of `count` tiny files in a few folders, one name not UTF-8."""
    files: dict[str | bytes, bytes] = {
        f"cd{i // 700}/track {i:05d}.flac": b"%d" % i for i in range(count - 1)
    }
    files[b"cd0/caf\xe9.flac"] = b"odd"
    return factory(name, files, dest_dir=where.download_dir)


def expected(torrent: TorrentFile) -> set[FileEntry]:
    """The files as the client gives them: names in 0.9.8's lossy form, on every version."""
    return {FileEntry(rtorrent_text(entry.path), entry.size) for entry in torrent.files}


def test_torrents_are_grouped_by_their_file_counts() -> None:
    counts = {"a": 600, "b": 300, "c": 200, "d": 5_000, "e": 0, "f": 999}
    assert [["a", "b"], ["c"], ["d"], ["e", "f"]] == by_files(list(counts), counts, 1_000)
    assert [] == by_files([], {}, 1_000)


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_torrent_of_many_files_is_read_in_several_calls(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    big = many_files(torrent_factory, "box set", 3_000, rtorrent)
    rtorrent.load(big, start=False, timeout=60)
    client, listing, one_call = clients(rtorrent.scgi_url)

    whole = await one_call.files(big.info_hash)
    in_parts = await client.files(big.info_hash)

    assert whole == in_parts
    assert expected(big) == set(in_parts)
    assert len(listing.listed) >= 3
    assert max(listing.listed) <= PER_CALL
    assert 3_000 == sum(listing.listed)


@pytest.mark.anyio
@pytest.mark.integration
async def test_all_files_lists_no_more_than_it_may_per_call(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    big = many_files(torrent_factory, "box set", 2_500, rtorrent)
    small = many_files(torrent_factory, "album", 600, rtorrent)
    other = many_files(torrent_factory, "single", 500, rtorrent)
    for torrent in (big, small, other):
        rtorrent.load(torrent, start=False, timeout=60)
    client, listing, one_call = clients(rtorrent.scgi_url)
    hashes = [small.info_hash, big.info_hash, "0" * 40, other.info_hash]

    whole = await one_call.all_files(hashes)
    in_parts = await client.all_files(hashes)

    assert whole == in_parts
    assert [small.info_hash, big.info_hash, other.info_hash] == list(in_parts)
    for torrent in (big, small, other):
        assert expected(torrent) == set(in_parts[torrent.info_hash])
    assert max(listing.listed) <= PER_CALL
    assert 3_600 == sum(listing.listed)
    assert len(listing.listed) >= 5  # 600 and 500 apart; 2,500 in three ranges or more


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_torrent_gone_between_ranges_is_unknown(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    big = many_files(torrent_factory, "box set", 1_500, rtorrent)
    rtorrent.load(big, start=False, timeout=60)
    client, _, _ = clients(rtorrent.scgi_url)
    assert {big.info_hash: 1_500} == await client.file_counts([big.info_hash])
    rtorrent.call("d.erase", big.info_hash)

    # The count is known (kept per info-hash): the first range finds it gone.
    with pytest.raises(UnknownTorrent):
        await client.files(big.info_hash)
    assert {} == await client.all_files([big.info_hash])
