"""Exact names: the metainfo's bytes matched to what rtorrent shows, `d.directory`
matched against the disk, and the metainfo read from rtorrent's session directory.
Each test that has a lookalike proves it survives."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import make_torrent, random_bytes
from harness.bencode import bencode
from harness.torrents import Name
from trees import Tree, plan

from rtorrentd.deletion.carry_out import carry_out
from rtorrentd.deletion.exact import match_files, read_metainfo, resolve_shown_path
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.protocol.metainfo import Metainfo, parse_metainfo
from rtorrentd.torrent import FileEntry

ODD: dict[Name, str] = {
    b"caf\xe9.bin": "caf?.bin",  # latin-1: not UTF-8
    "x😀.bin".encode(): "x????.bin",  # 4-byte UTF-8
    "\ufffe.bin".encode(): "???.bin",  # U+FFFE
    b"a\rb.bin": "a\nb.bin",  # CR
    b"\xe9\x01.bin": "??.bin",  # a control character inside an invalid name
    b"sub\xe8/plain.bin": "sub?/plain.bin",
    b"100%E9.bin": "100%E9.bin",  # a literal % (0.16 leaves it as it is)
}


def _meta(tmp_path: Path, files: Mapping[Name, bytes]) -> Metainfo:
    torrent = make_torrent(tmp_path, "t", files, write_payload=False)
    return parse_metainfo(torrent.data, torrent.info_hash)


def test_each_file_gets_the_bytes_rtorrent_shows_lossily(tmp_path: Path) -> None:
    meta = _meta(tmp_path, {name: b"x" for name in ODD})
    listed = [FileEntry(shown, 1) for shown in ODD.values()]

    exact = match_files(meta, listed)

    assert [os.fsencode(n) if isinstance(n, str) else n for n in ODD] == [
        os.fsencode(f.path) for f in exact
    ]


def test_the_spelling_rtorrent_uses_is_the_one_its_display_can_be(tmp_path: Path) -> None:
    info = {
        "name": b"t",
        "piece length": 16384,
        "pieces": b"p" * 20,
        "files": [{"length": 1, "path": [b"a\xe9.bin"], "path.utf-8": ["aé.bin"]}],
    }
    meta = _parse(info)
    assert "aé.bin" == match_files(meta, [FileEntry("aé.bin", 1)])[0].path  # encoding.add
    assert b"a\xe9.bin" == os.fsencode(match_files(meta, [FileEntry("a?.bin", 1)])[0].path)


def _parse(info: dict[str, Any]) -> Metainfo:
    return parse_metainfo(bencode({"info": info}), hashlib.sha1(bencode(info)).hexdigest())


@pytest.mark.parametrize(
    ("listed", "why"),
    [
        ([FileEntry("caf?.bin", 1)], "rtorrent lists 1 files, its metainfo 2"),
        ([FileEntry("caf?.bin", 1), FileEntry("b.bin", 2)], "rtorrent lists 2 bytes"),
        ([FileEntry("cafe.bin", 1), FileEntry("b.bin", 1)], "none of the metainfo's names"),
        ([FileEntry("b.bin", 1), FileEntry("caf?.bin", 1)], "none of the metainfo's names"),
    ],
)
def test_a_list_that_is_not_the_metainfos_is_refused(
    tmp_path: Path, listed: list[FileEntry], why: str
) -> None:
    meta = _meta(tmp_path, {b"caf\xe9.bin": b"x", "b.bin": b"y"})
    with pytest.raises(UnsafeDeletion, match=why):
        match_files(meta, listed)


def test_two_spellings_shown_alike_are_refused() -> None:
    info = {
        "name": b"t",
        "piece length": 16384,
        "pieces": b"p" * 20,
        "files": [{"length": 1, "path": [b"a\xe9"], "path.cp1252": [b"a\xe8"]}],
    }
    with pytest.raises(UnsafeDeletion, match="spells it in 2 ways rtorrent shows alike"):
        match_files(_parse(info), [FileEntry("a?", 1)])


# --- d.directory against the disk ----------------------------------------------------------


def _no_listing(path: bytes) -> Collection[bytes]:
    raise AssertionError(f"listed {path!r}, but the path is exact")


def test_a_path_shown_without_stand_ins_is_taken_as_it_is(tmp_path: Path) -> None:
    shown = f"{tmp_path}/dl/Movie é 東京"
    assert shown == resolve_shown_path(shown, listdir=_no_listing)
    assert shown == resolve_shown_path(shown, names=[b"x"], listdir=_no_listing)


@pytest.mark.parametrize("shown", ["relative/dir", "/dl/../etc", "/dl/caf?/../x"])
def test_relative_and_dotdot_paths_are_left_for_planning_to_refuse(shown: str) -> None:
    assert shown == resolve_shown_path(shown, listdir=_no_listing)


def test_a_lossy_component_is_the_one_entry_it_can_be(tmp_path: Path) -> None:
    real = os.path.join(os.fsencode(tmp_path), b"Cr\xe8me", b"caf\xe9")
    os.makedirs(real)
    (tmp_path / "Creme").mkdir()  # not shown as "Cr?me"
    assert real == os.fsencode(resolve_shown_path(f"{tmp_path}/Cr?me/caf?"))


def test_a_lookalike_beside_a_lossy_component_is_refused(tmp_path: Path) -> None:
    os.makedirs(os.path.join(os.fsencode(tmp_path), b"Cr\xe8me"))
    (tmp_path / "Cr?me").mkdir()  # really named so: a link dir, someone's folder

    with pytest.raises(UnsafeDeletion) as info:
        resolve_shown_path(f"{tmp_path}/Cr?me")

    assert "holds 'Cr?me', 'Cr\\udce8me', which rtorrent shows alike as 'Cr?me'" in str(info.value)


def test_a_lossy_component_with_nothing_on_disk_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeDeletion, match=r"no entry of .* is what rtorrent shows as 'Cr\?me'"):
        resolve_shown_path(f"{tmp_path}/Cr?me/dl")


def test_an_unlistable_parent_is_refused(tmp_path: Path) -> None:
    def denied(path: bytes) -> Collection[bytes]:
        raise PermissionError(13, "Permission denied")

    with pytest.raises(UnsafeDeletion, match="cannot be listed to find it"):
        resolve_shown_path(f"{tmp_path}/Cr?me", listdir=denied)


def test_the_torrents_own_directory_is_a_spelling_of_its_name(tmp_path: Path) -> None:
    base = os.fsencode(tmp_path)
    ours = os.path.join(base, b"caf\xe9")
    shown = f"{tmp_path}/caf?"
    # Gone: the name's one spelling (its files are then all gone).
    assert ours == os.fsencode(resolve_shown_path(shown, names=[b"caf\xe9"]))
    os.mkdir(ours)
    assert ours == os.fsencode(resolve_shown_path(shown, names=[b"caf\xe9"]))
    # Another name rtorrent shows alike beside it: which one is meant cannot be told.
    (tmp_path / "caf?").mkdir()
    with pytest.raises(UnsafeDeletion, match="shows alike"):
        resolve_shown_path(shown, names=[b"caf\xe9"])
    # Only the lookalike is there: it is not the torrent's name.
    os.rmdir(ours)
    with pytest.raises(UnsafeDeletion, match="that is not the torrent's name"):
        resolve_shown_path(shown, names=[b"caf\xe9"])


def test_a_directory_set_apart_from_the_name_is_matched_like_any_other(tmp_path: Path) -> None:
    real = os.path.join(os.fsencode(tmp_path), b"Sp\xe9cial")
    os.mkdir(real)  # d.directory_base.set to a name that is not the torrent's
    assert real == os.fsencode(resolve_shown_path(f"{tmp_path}/Sp?cial", names=[b"album"]))


def test_exact_names_delete_the_torrents_file_and_keep_its_lookalike(tree: Tree) -> None:
    movie = tree.dl / "Movie"
    movie.mkdir()
    ours = os.path.join(os.fsencode(movie), b"caf\xe9.bin")
    with open(ours, "wb") as file:
        file.write(b"ours")
    tree.canaries.add(movie / "caf?.bin", b"them")  # same size, named as rtorrent shows ours
    meta = _meta(tree.base, {b"caf\xe9.bin": b"ours"})

    files = match_files(meta, [FileEntry("caf?.bin", 4)])
    outcome = carry_out(plan(tree, movie, files))

    assert (os.fsdecode(ours),) == outcome.deleted
    assert not os.path.lexists(ours)


# --- the metainfo from rtorrent's session directory ------------------------------------------


def _session(tmp_path: Path) -> tuple[Path, str, bytes]:
    session = tmp_path / "session"
    session.mkdir()
    torrent = make_torrent(tmp_path, "t", {"a.bin": random_bytes(100, 1)}, write_payload=False)
    return session, torrent.info_hash, torrent.data


def test_the_metainfo_is_read_from_the_session_directory(tmp_path: Path) -> None:
    session, info_hash, data = _session(tmp_path)
    (session / f"{info_hash}.torrent").write_bytes(data)
    assert info_hash == read_metainfo(f"{session}/", info_hash.lower()).info_hash


def test_no_session_directory_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(UnsafeDeletion, match=r"session\.path is empty.*set session\.path"):
        read_metainfo("", "A" * 40)


def test_a_missing_metainfo_is_refused_with_advice(tmp_path: Path) -> None:
    session, info_hash, _ = _session(tmp_path)
    with pytest.raises(UnsafeDeletion, match=r"not in rtorrent's session directory.*retry later"):
        read_metainfo(str(session), info_hash)


def test_an_unreadable_metainfo_is_refused_with_advice(tmp_path: Path) -> None:
    session, info_hash, _ = _session(tmp_path)
    (session / f"{info_hash}.torrent").mkdir()  # read() fails (EISDIR), as EACCES would
    with pytest.raises(UnsafeDeletion, match=r"cannot be read.*let rtorrentd's user read"):
        read_metainfo(str(session), info_hash)


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"not bencoding", "not valid bencoding"), (None, "is another torrent's: its info-hash")],
)
def test_a_metainfo_that_is_not_the_torrents_is_refused(
    tmp_path: Path, content: bytes | None, why: str
) -> None:
    session, info_hash, _ = _session(tmp_path)
    other = make_torrent(tmp_path, "other", {"a.bin": b"x"}, write_payload=False)
    (session / f"{info_hash}.torrent").write_bytes(other.data if content is None else content)
    with pytest.raises(UnsafeDeletion, match=f"cannot be used.*{why}"):
        read_metainfo(str(session), info_hash)
