"""Content identity: which pieces are hashed for the files being deleted, and what a
mismatch, a missing piece or a too-small budget does."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest
from harness import TorrentFile, make_torrent, random_bytes
from harness.torrents import Name

from rtorrentd.deletion.content import Verified, check_content
from rtorrentd.deletion.pieces import Check, Layout, Segment, Unproven, choose_sample
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.protocol.metainfo import Bitfield, Metainfo, parse_metainfo

PIECE = 16384


def _meta(tmp_path: Path, sizes: Mapping[str, int], *, write: bool = True) -> Metainfo:
    files: dict[Name, bytes] = {n: random_bytes(size, n) for n, size in sizes.items()}
    torrent = make_torrent(tmp_path, "t", files, piece_length=PIECE, write_payload=write)
    return parse_metainfo(torrent.data, torrent.info_hash)


def _all(meta: Metainfo) -> range:
    return range(len(meta.files))


def test_segments_are_the_bytes_of_each_file_a_piece_spans(tmp_path: Path) -> None:
    meta = _meta(tmp_path, {"a": 20_000, "empty": 0, "b": 10_000, "c": 5}, write=False)
    layout = Layout(meta)

    assert (Segment(0, 0, PIECE),) == layout.segments(0)
    assert (Segment(0, PIECE, 20_000 - PIECE), Segment(2, 0, 10_000), Segment(3, 0, 5)) == (
        layout.segments(1)
    )
    assert (range(0, 2), range(0), range(1, 2), range(1, 2)) == tuple(
        layout.pieces_of(i) for i in _all(meta)
    )


def test_a_large_file_is_proven_by_a_piece_of_its_own_near_its_middle(tmp_path: Path) -> None:
    meta = _meta(tmp_path, {"head": 100, "big": 10 * PIECE, "tail": 100}, write=False)
    sample = choose_sample(meta, [1], _all(meta), Bitfield.full(meta.piece_count))
    assert (Check(5, (Segment(1, 5 * PIECE - 100, PIECE),)),) == sample.checks
    assert () == sample.unproven


def test_small_files_share_pieces_with_their_neighbours(tmp_path: Path) -> None:
    sizes = {f"f{i}": 3_000 for i in range(20)}  # 60,000 bytes: four pieces
    meta = _meta(tmp_path, sizes, write=False)
    sample = choose_sample(meta, _all(meta), _all(meta), Bitfield.full(meta.piece_count))
    assert [0, 1, 2, 3] == [c.piece for c in sample.checks]
    assert 60_000 == sample.size
    covered = {f for c in sample.checks for f in c.files}
    assert set(_all(meta)) == covered


def test_a_piece_that_only_touches_a_file_shows_nothing_of_it(tmp_path: Path) -> None:
    # Piece 0 is a.bin and the first byte of b.bin: a header any re-encode shares.
    meta = _meta(tmp_path, {"a.bin": PIECE - 1, "b.bin": 3 * PIECE}, write=False)
    layout = Layout(meta)
    assert (0,) == layout.proves(Check(0, layout.segments(0)))
    sample = choose_sample(meta, _all(meta), _all(meta), Bitfield.full(meta.piece_count))
    assert [0, 2] == [c.piece for c in sample.checks]


def test_only_pieces_rtorrent_has_are_checked(tmp_path: Path) -> None:
    meta = _meta(tmp_path, {"big": 10 * PIECE}, write=False)
    have = Bitfield(b"\x00\x40", 10)  # only piece 9
    assert [9] == [c.piece for c in choose_sample(meta, [0], [0], have).checks]

    none = choose_sample(meta, [0], [0], Bitfield.empty(10))
    assert ((), (Unproven(0, "rtorrent has none of its pieces, so none can be checked"),)) == (
        none.checks,
        none.unproven,
    )


def test_a_piece_needing_a_missing_neighbour_cannot_prove_a_small_file(tmp_path: Path) -> None:
    meta = _meta(tmp_path, {"a": 1_000, "b": 1_000, "c": 40_000}, write=False)
    sample = choose_sample(meta, [1], [1, 2], Bitfield.full(meta.piece_count))  # "a" is gone
    assert () == sample.checks
    assert "also holds bytes of a file that is not on disk" in sample.unproven[0].reason
    # When the piece does not need the missing file, it proves the file.
    assert [1] == [c.piece for c in choose_sample(meta, [2], [1, 2], Bitfield.full(3)).checks]


def test_empty_files_need_no_proof(tmp_path: Path) -> None:
    meta = _meta(tmp_path, {"a": 100, "empty": 0}, write=False)
    sample = choose_sample(meta, [1], _all(meta), Bitfield.empty(meta.piece_count))
    assert ((), ()) == (sample.checks, sample.unproven)


# --- check_content on files on disk ------------------------------------------------------


def _on_disk(tmp_path: Path, sizes: Mapping[str, int]) -> tuple[Metainfo, Path]:
    files: dict[Name, bytes] = {n: random_bytes(size, n) for n, size in sizes.items()}
    torrent: TorrentFile = make_torrent(tmp_path, "t", files, piece_length=PIECE)
    return parse_metainfo(torrent.data, torrent.info_hash), torrent.payload_path


def _check(
    meta: Metainfo,
    root: Path,
    targets: Collection[int],
    *,
    have: Bitfield | None = None,
    budget: int = 64 << 20,
    dataless: Collection[int] = (),
    readable: Collection[int] | None = None,
) -> Verified:
    def name_of(index: int) -> str:
        return str(root / os.fsdecode(b"/".join(meta.files[index].path)))

    return check_content(
        meta,
        targets,
        _all(meta) if readable is None else readable,
        Bitfield.full(meta.piece_count) if have is None else have,
        budget=budget,
        holds_no_data=lambda index: index in dataless,
        open_file=lambda index: os.open(name_of(index), os.O_RDONLY | os.O_NOFOLLOW),
        name_of=name_of,
    )


def test_the_torrents_own_files_pass(tmp_path: Path) -> None:
    meta, root = _on_disk(tmp_path, {"a.bin": 40_000, "b.bin": 3_000, "c.bin": 20_000})
    # Piece 2 spans all three but holds little of a.bin and c.bin: it proves b.bin;
    # piece 1 (inside a.bin) and piece 3 (most of c.bin) prove the others.
    assert Verified(3, 2 * PIECE + 13_848, 3, 0) == _check(meta, root, _all(meta))
    assert Verified(1, PIECE, 1, 0) == _check(meta, root, [0])


def test_a_file_replaced_by_another_of_the_same_size_is_refused_by_name(
    tmp_path: Path,
) -> None:
    meta, root = _on_disk(tmp_path, {"a.bin": 40_000, "big.bin": 50_000})
    (root / "big.bin").write_bytes(random_bytes(50_000, "someone else's"))

    with pytest.raises(UnsafeDeletion) as info:
        _check(meta, root, _all(meta))

    assert f"refusing to delete '{root / 'big.bin'}': its content is not the torrent's" in str(
        info.value
    )


def test_a_small_file_replaced_is_refused_naming_the_files_of_its_piece(
    tmp_path: Path,
) -> None:
    meta, root = _on_disk(tmp_path, {"a.nfo": 300, "b.nfo": 300, "c.bin": 40_000})
    (root / "b.nfo").write_bytes(b"x" * 300)

    with pytest.raises(UnsafeDeletion) as info:
        _check(meta, root, [1])

    # c.bin matches on a piece of its own; the two small files cannot be told apart.
    message = str(info.value)
    assert "piece 0 does not match" in message
    assert all(repr(str(root / name)) in message for name in ("a.nfo", "b.nfo"))
    assert "c.bin" not in message


def test_a_sample_over_the_budget_is_refused_with_the_budget_it_needs(tmp_path: Path) -> None:
    meta, root = _on_disk(tmp_path, {f"f{i}.bin": 2 * PIECE for i in range(4)})

    with pytest.raises(UnsafeDeletion, match=r"hashing 0\.1 MiB \(4 pieces\), more than"):
        _check(meta, root, _all(meta), budget=3 * PIECE)
    assert 4 * PIECE == _check(meta, root, _all(meta), budget=4 * PIECE).bytes_read


def test_a_file_none_of_whose_pieces_rtorrent_has_is_refused_unless_it_holds_no_data(
    tmp_path: Path,
) -> None:
    meta, root = _on_disk(tmp_path, {"done.bin": 2 * PIECE, "todo.bin": 2 * PIECE})
    have = Bitfield(b"\xc0", 4)  # the pieces of done.bin only

    with pytest.raises(UnsafeDeletion, match=r"todo\.bin.*nothing shows.*none of its pieces"):
        _check(meta, root, _all(meta), have=have)
    assert Verified(1, PIECE, 1, 1) == _check(meta, root, _all(meta), have=have, dataless=[1])


def test_a_file_shorter_than_planned_is_refused(tmp_path: Path) -> None:
    meta, root = _on_disk(tmp_path, {"a.bin": 3 * PIECE})
    os.truncate(root / "a.bin", PIECE)
    with pytest.raises(UnsafeDeletion, match=r"cannot be read.*shorter than when planned"):
        _check(meta, root, [0])


def test_a_file_that_cannot_be_opened_is_refused(tmp_path: Path) -> None:
    meta, root = _on_disk(tmp_path, {"a.bin": 3 * PIECE})
    (root / "a.bin").unlink()
    (root / "a.bin").symlink_to(root / "elsewhere")
    with pytest.raises(UnsafeDeletion, match="cannot be read to check its content"):
        _check(meta, root, [0])
