"""Attacks on names and content, against a real rtorrent (each version): a catalogue.

rtorrent shows names as display strings (RTORRENT.md, "Names are lossy"), and a
file's name and size say nothing of what it holds. Each attack below made
rtorrentd, before exact names and content identity, delete someone else's file,
or refuse a torrent it can delete safely:

- a name rtorrent shows lossily, with a file really named what it shows beside
  it (same size, someone else's): the torrent's file goes by its exact bytes,
  the lookalike stays;
- a file replaced by another of the same size, or a user's file dropped where
  the torrent's was: refused, naming the file;
- exact names that cannot be had (no session directory, metainfo missing, the
  metainfo of another torrent): refused, saying how to make it possible;
- an incomplete torrent: checked on the pieces rtorrent has; a file none of whose
  pieces rtorrent has goes only if it holds no data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from flow import LABEL_DOOMED, Rule, client_for, config_for, contents, one_result, poll, state
from harness import RtorrentProcess, TorrentFactory, TorrentFile, random_bytes
from harness.torrents import Name
from structlog.testing import capture_logs
from trees import Canaries

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ANY_STATE: Rule = ("doomed", 'label == "doomed"', "delete")  # complete or not


def _pack(factory: TorrentFactory, dest: Path, odd: Name, seed: int = 0) -> TorrentFile:
    return factory(
        "pack",
        {odd: random_bytes(20_000, seed + 1), "plain.bin": random_bytes(30_000, seed + 2)},
        dest_dir=dest,
    )


def _refused(logs: Sequence[Mapping[str, Any]], info_hash: str, *words: str) -> str:
    event = one_result(logs, info_hash)
    assert ("action.refused", 0) == (event["event"], event["freed_bytes"])
    reason = str(event["reason"])
    assert all(word in reason for word in words), reason
    return reason


# --- names rtorrent shows lossily ------------------------------------------------------------

# (the torrent's file, a name the same rtorrent shows alike: someone else's file)
LOSSY: list[tuple[bytes, bytes]] = [
    (b"caf\xe9.bin", b"caf?.bin"),  # not UTF-8: '?' per byte (0.16: %E9)
    ("x😀.bin".encode(), b"x????.bin"),  # 4-byte UTF-8: '?' per byte (0.16: escaped)
    (b"a\rb.bin", b"a\nb.bin"),  # CR shown as LF
    (b"\xe9\x01.bin", b"??.bin"),  # a control character inside an invalid name
    (b"100%E9.bin", b"100\xe9.bin"),  # a literal % (0.16 shows both as 100%E9.bin)
]


@pytest.mark.parametrize(("odd", "lookalike"), LOSSY)
async def test_a_name_shown_lossily_is_deleted_by_its_bytes_and_its_lookalike_kept(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, odd: bytes, lookalike: bytes
) -> None:
    dl = rtorrent.download_dir
    torrent = _pack(torrent_factory, dl, odd)
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    canaries = Canaries()
    theirs = canaries.add(os.path.join(os.fsencode(torrent.payload_path), lookalike), b"t" * 20_000)

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    event = one_result(logs, info_hash)
    assert ("action.done", 50_000) == (event["event"], event["freed_bytes"]), event
    assert [theirs.name.encode("utf-8", "surrogateescape")] == os.listdir(
        os.fsencode(torrent.payload_path)
    )
    canaries.check()


# --- same name, same size, other bytes -------------------------------------------------------


async def test_a_file_replaced_by_another_of_the_same_size_is_refused_naming_it(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    """The data was moved and the directory re-pointed, or a file re-encoded to the
    same size: rtorrent still lists it, complete and seeding."""
    dl = rtorrent.download_dir
    torrent = _pack(torrent_factory, dl, "episode.mkv")
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    replaced = torrent.payload_path / "episode.mkv"
    fresh = replaced.with_name("new.tmp")
    fresh.write_bytes(random_bytes(20_000, "the re-encode"))
    fresh.replace(replaced)
    canaries = Canaries()
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    _refused(logs, info_hash, f"refusing to delete '{replaced}': its content is not the torrent's")
    assert {info_hash: (1, 1)} == state(rtorrent)  # refused before the stop: still seeding
    canaries.check()


async def test_a_users_file_dropped_where_the_torrents_was_is_refused(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    torrent = torrent_factory("report.pdf", random_bytes(40_000, 3), dest_dir=dl)
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    rtorrent.call("d.stop", info_hash)
    rtorrent.call("d.close", info_hash)
    torrent.payload_path.unlink()  # the user cleaned up by hand, then saved their own file
    canaries = Canaries()
    canaries.add(torrent.payload_path, random_bytes(40_000, "the user's own report"))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    _refused(logs, info_hash, "report.pdf", "its content is not the torrent's")
    canaries.check()


async def test_dry_run_reports_a_replaced_file_and_changes_nothing(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    torrent = _pack(torrent_factory, dl, "a.bin")
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    (torrent.payload_path / "plain.bin").write_bytes(random_bytes(30_000, "other"))
    canaries = Canaries()
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]), dry_run=True)

    _refused(logs, info_hash, "plain.bin", "its content is not the torrent's")
    assert {info_hash: (1, 1)} == state(rtorrent)
    canaries.check()


# --- when the exact names cannot be had ------------------------------------------------------


async def test_no_session_directory_is_refused_with_advice(
    make_rtorrent: Callable[..., RtorrentProcess], torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    with make_rtorrent(tmp_path / "rt", extra_config=['session.path.set = ""']) as rt:
        torrent = _pack(torrent_factory, rt.download_dir, "a.bin")
        info_hash = rt.load(torrent, commands=(LABEL_DOOMED,), complete=True)
        canaries = Canaries()
        canaries.keep(contents(torrent))

        with capture_logs() as logs:
            await poll(client_for(rt), config_for(rt, [rt.download_dir]))

        _refused(logs, info_hash, "session.path is empty", "set session.path in rtorrent.rc")
        assert {info_hash: (1, 1)} == state(rt)
        canaries.check()


@pytest.mark.parametrize("fault", ["missing", "another torrent's"])
async def test_a_metainfo_that_cannot_be_had_is_refused_with_advice(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, fault: str
) -> None:
    dl = rtorrent.download_dir
    torrent = _pack(torrent_factory, dl, "a.bin")
    other = _pack(torrent_factory, dl / "other", "b.bin", seed=10)
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    session_file = rtorrent.session_dir / f"{info_hash}.torrent"
    if fault == "missing":
        session_file.unlink()
    else:
        session_file.write_bytes(other.data)
    canaries = Canaries()
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    words = (
        ("not in rtorrent's session directory", "retry later")
        if fault == "missing"
        else ("is another torrent's", other.info_hash)
    )
    _refused(logs, info_hash, str(session_file), *words)
    assert {info_hash: (1, 1)} == state(rtorrent)
    canaries.check()


# --- incomplete torrents: the pieces rtorrent has ------------------------------------------------


@pytest.mark.parametrize("second", ["sparse", "junk"])
async def test_an_incomplete_torrent_is_checked_on_the_pieces_rtorrent_has(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, second: str
) -> None:
    """16 KiB pieces: a.bin (30,000 bytes) holds piece 0 whole; b.bin (20,000) no
    piece rtorrent can have without it. Sparse, b.bin holds no data and goes; with
    someone's bytes in it, nothing shows whose they are: refused."""
    dl = rtorrent.download_dir
    torrent = torrent_factory(
        "partial", {"a.bin": random_bytes(30_000, 1), "b.bin": random_bytes(20_000, 2)}, dest_dir=dl
    )
    b = torrent.payload_path / "b.bin"
    if second == "sparse":
        b.unlink()
        with b.open("wb") as sparse:
            sparse.truncate(20_000)
    else:
        b.write_bytes(random_bytes(20_000, "someone's"))
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=False)
    assert "80" == rtorrent.call("d.bitfield", info_hash)  # piece 0 of 4
    canaries = Canaries()
    if second == "junk":
        canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl], [ANY_STATE]))

    if second == "junk":
        _refused(logs, info_hash, str(b), "rtorrent has none of its pieces", "holds data")
    else:
        assert "action.done" == one_result(logs, info_hash)["event"]
        assert not torrent.payload_path.exists()
    canaries.check()


async def test_an_incomplete_closed_torrent_reads_its_pieces_from_the_session(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    """Closed, d.bitfield is empty: the pieces rtorrent has come from its resume file."""
    dl = rtorrent.download_dir
    torrent = torrent_factory(
        "partial", {"a.bin": random_bytes(30_000, 1), "b.bin": random_bytes(20_000, 2)}, dest_dir=dl
    )
    b = torrent.payload_path / "b.bin"
    b.unlink()
    with b.open("wb") as sparse:  # holds no data: it may go unproven
        sparse.truncate(20_000)
    info_hash = rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=False)
    rtorrent.call("d.stop", info_hash)
    rtorrent.call("d.close", info_hash)
    assert "" == rtorrent.call("d.bitfield", info_hash)
    # a.bin replaced: piece 0, which the resume file says rtorrent has, differs. (Had
    # the bitfield not been read, a.bin would be refused as holding no piece.)
    (torrent.payload_path / "a.bin").write_bytes(random_bytes(30_000, "other"))
    canaries = Canaries()
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl], [ANY_STATE]))

    _refused(logs, info_hash, "a.bin", "its content is not the torrent's")
    canaries.check()
