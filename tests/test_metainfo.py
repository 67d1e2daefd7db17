"""Metainfo: exact names, files and pieces from a .torrent, trusted only when its
info dictionary hashes to the torrent; which pieces rtorrent has; and which names
a display string may stand for."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from harness import make_torrent, random_bytes
from harness.bencode import Bencodable, bencode
from harness.torrents import Name

from rtorrentd.errors import MetainfoError
from rtorrentd.protocol.metainfo import (
    Bitfield,
    MetaFile,
    bitfield_from_hex,
    bitfield_from_resume,
    parse_metainfo,
)
from rtorrentd.protocol.names import is_exact, may_show_as


def _pieces(blob: bytes, length: int) -> bytes:
    return b"".join(
        hashlib.sha1(blob[i : i + length]).digest() for i in range(0, len(blob), length)
    )


def _torrent(info: dict[str, Any], **top: Bencodable) -> tuple[bytes, str]:
    """A .torrent around `info`, and its info-hash."""
    data = bencode({"info": info, "announce": "http://127.0.0.1:1/announce", **top})
    return data, hashlib.sha1(bencode(info)).hexdigest().upper()


def _info(**changes: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": b"album",
        "piece length": 16,
        "pieces": _pieces(b"x" * 40, 16),
        "files": [{"length": 30, "path": [b"a.bin"]}, {"length": 10, "path": [b"cd2", b"b.bin"]}],
    }
    info.update(changes)
    return {k: v for k, v in info.items() if v is not None}


def test_a_multi_file_torrent_gives_exact_paths_offsets_and_pieces(tmp_path: Path) -> None:
    files: dict[Name, bytes] = {
        b"caf\xe9.bin": random_bytes(30_000, 1),
        "sub/odd\x01name.bin": random_bytes(5, 2),
    }
    torrent = make_torrent(tmp_path, b"Cr\xe8me", files, write_payload=False)

    meta = parse_metainfo(torrent.data, torrent.info_hash.lower())

    assert (torrent.info_hash, b"Cr\xe8me", True) == (meta.info_hash, meta.name, meta.multi_file)
    assert (
        MetaFile((b"caf\xe9.bin",), (), 30_000, 0),
        MetaFile((b"sub", b"odd\x01name.bin"), (), 5, 30_000),
    ) == meta.files
    assert (16384, 2, 30_005) == (meta.piece_length, meta.piece_count, meta.total_length)
    blob = b"".join(files.values())
    assert hashlib.sha1(blob[16384:]).digest() == meta.piece_hash(1)
    assert ((0, 16384), (16384, 30_005)) == (meta.piece_span(0), meta.piece_span(1))


def test_a_single_file_torrent_is_one_file_named_as_the_torrent(tmp_path: Path) -> None:
    torrent = make_torrent(tmp_path, b"caf\xe9.bin", random_bytes(100, 1), write_payload=False)
    meta = parse_metainfo(torrent.data, torrent.info_hash)
    assert (False, (MetaFile((b"caf\xe9.bin",), (), 100, 0),)) == (meta.multi_file, meta.files)


def test_extra_keys_rtorrent_adds_do_not_change_the_identity() -> None:
    info = _info()
    data, info_hash = _torrent(info, rtorrent={"state": 1}, libtorrent_resume={"bitfield": 2})
    assert b"album" == parse_metainfo(data, info_hash).name


def test_the_metainfo_of_another_torrent_is_refused() -> None:
    data, _ = _torrent(_info())
    other = "A" * 40
    with pytest.raises(MetainfoError, match=f"another torrent's: its info-hash is .*not {other}"):
        parse_metainfo(data, other)


def test_alternative_spellings_are_kept_when_they_differ() -> None:
    files = [
        {"length": 30, "path": [b"a\xe9.bin"], "path.utf-8": ["aé.bin"]},
        {"length": 10, "path": [b"b.bin"], "path.utf-8": [b"b.bin"]},  # the same: not kept
    ]
    data, info_hash = _torrent(_info(files=files, **{"name.utf-8": "albüm"}))
    meta = parse_metainfo(data, info_hash)
    assert ((("aé".encode() + b".bin",),), ()) == tuple(f.alternatives for f in meta.files)
    assert ((b"a\xe9.bin",), ("aé.bin".encode(),)) == meta.files[0].spellings
    assert (b"album", "albüm".encode()) == meta.names

    single, single_hash = _torrent(
        {
            "name": b"caf\xe9",
            "name.utf-8": "café",
            "length": 40,
            "piece length": 16,
            "pieces": _pieces(b"x" * 40, 16),
        }
    )
    assert (("café".encode(),),) == parse_metainfo(single, single_hash).files[0].alternatives


MALFORMED: list[tuple[dict[str, Any], str]] = [
    (_info(name=None), "name is missing"),
    (_info(name=b".."), "not a plain file name"),
    (_info(name=b"a/b"), "not a plain file name"),
    (_info(name=b""), "not a plain file name"),
    (_info(**{"piece length": 0}), "not positive"),
    (_info(pieces=b"x" * 21), "not a multiple of 20"),
    (_info(pieces=b"x" * 20), "1 piece hashes for 40 bytes"),
    (_info(files=[]), "lists no files"),
    (_info(files=[{"length": 40, "path": []}]), "file 0 path is empty"),
    (_info(files=[{"length": 40, "path": [b"a", b".."]}]), "not a plain file name"),
    (_info(files=[{"length": 40, "path": [b"a\0b"]}]), "not a plain file name"),
    (_info(files=[{"length": -1, "path": [b"a"]}]), "negative"),
    (_info(files=[{"path": [b"a"]}]), "file 0 length is missing"),
    (_info(files=[{"length": 40, "path": [b"a"], "path.utf-8": [b".."]}]), "not a plain"),
    (_info(length=40), "exactly one of files and length"),
    (_info(files=None), "exactly one of files and length"),
]


@pytest.mark.parametrize(("info", "what"), MALFORMED)
def test_malformed_metainfo_is_refused(info: dict[str, Any], what: str) -> None:
    data, info_hash = _torrent(info)
    with pytest.raises(MetainfoError, match=what):
        parse_metainfo(data, info_hash)


def test_a_torrent_without_info_is_refused() -> None:
    with pytest.raises(MetainfoError, match="no info dictionary"):
        parse_metainfo(bencode({"announce": "x"}), "A" * 40)


# --- which pieces rtorrent has ------------------------------------------------------------


def test_d_bitfield_is_hex_most_significant_bit_first() -> None:
    have = bitfield_from_hex("9F", 8)  # as rtorrent showed a torrent missing pieces 1, 2
    assert have is not None
    assert [True, False, False, True, True, True, True, True] == [have.has(i) for i in range(8)]
    assert (6, False, False) == (have.complete, have.has(8), have.has(-1))
    assert bitfield_from_hex("", 8) is None  # a closed torrent
    assert bitfield_from_hex("FF00", 8) is None  # wrong length
    assert bitfield_from_hex("zz", 8) is None


def test_the_resume_file_gives_the_bitfield_of_a_closed_torrent() -> None:
    def resume(**keys: Bencodable) -> bytes:
        return bencode({"files": [], **keys})

    assert Bitfield.full(8) == bitfield_from_resume(resume(bitfield=8), 8)
    assert Bitfield.empty(8) == bitfield_from_resume(resume(bitfield=0), 8)
    assert Bitfield(b"\x9f", 8) == bitfield_from_resume(resume(bitfield=b"\x9f"), 8)
    uncertain = (3).to_bytes(4, "big")
    assert Bitfield(b"\x8f", 8) == bitfield_from_resume(
        resume(bitfield=b"\x9f", uncertain_pieces=uncertain), 8
    )
    for unusable in (resume(bitfield=5), resume(bitfield=b"\x9f\x00"), resume(), b"x"):
        assert bitfield_from_resume(unusable, 8) is None
    assert bitfield_from_resume(resume(bitfield=8, uncertain_pieces=b"abc"), 8) is None


# --- display strings -----------------------------------------------------------------------

SHOWN: list[tuple[bytes, str]] = [
    (b"plain.bin", "plain.bin"),
    ("café".encode(), "café"),
    (b"caf\xe9.bin", "caf?.bin"),  # 0.9.8: each invalid byte
    ("x😀".encode(), "x????"),  # 0.9.8: each byte of a 4-byte character
    ("a\ufffe".encode(), "a???"),
    (b"a\r\nb", "a\nb"),  # CR and CRLF become LF
    (b"a\rb", "a\nb"),
    (b"\xe9\x01", "??"),  # a control character inside an invalid name
    (b"caf\xe9.bin", "caf%E9.bin"),  # 0.16
    (b"caf%E9.bin", "caf%E9.bin"),  # 0.16 leaves a literal % alone
    ("café😀".encode(), "caf%C3%A9%F0%9F%98%80"),  # 0.16: the whole string escaped
    (b"100%", "100%"),
    (b"caf\xe9 \xff", "caf\ufffd \ufffd"),  # raw bytes through the XML decoder
    ("a\ufffdb".encode(), "a\ufffdb"),
    (b"what?", "what?"),
    (b"100%E9.bin", "100?.bin"),  # 0.16's escapes as the client shows them
]

NOT_SHOWN: list[tuple[bytes, str]] = [
    (b"cafe.bin", "caf?.bin"),
    (b"caf\xe9\xe9.bin", "caf?.bin"),
    (b"caf\xe9.bin", "caf%E8.bin"),
    (b"caf.bin", "caf%E9.bin"),
    (b"Plain.bin", "plain.bin"),
    ("café".encode(), "cafe"),
]


@pytest.mark.parametrize(("name", "shown"), SHOWN)
def test_names_rtorrent_may_show_so(name: bytes, shown: str) -> None:
    assert may_show_as(name, shown)


@pytest.mark.parametrize(("name", "shown"), NOT_SHOWN)
def test_names_rtorrent_never_shows_so(name: bytes, shown: str) -> None:
    assert not may_show_as(name, shown)


@pytest.mark.parametrize(
    ("shown", "exact"),
    [
        ("plain.bin", True),
        ("café 東京", True),
        ("\x01\x7f", True),
        ("caf?.bin", False),
        ("100%", False),
        ("a\nb", False),
        ("a\ufffd", False),
        ("a\udce9", False),
    ],
)
def test_only_a_string_without_stand_ins_is_exact(shown: str, exact: bool) -> None:
    assert exact == is_exact(shown)
