"""Orphan cleanup against a directory swapped for a symlink (TOCTOU), with real
rtorrents (0.9.8 and 0.16) and the real recycle bin.

Each attack renames a directory under the allowed root away and puts a symlink to
a directory outside the root in its place, at the worst moment: while the walk
lists it, between the scan and the move, or at the very call that moves or removes
(a hook on that call, no sleeps). Nothing outside the root may be touched, and no
entry outside it may be reported as an orphan under a name inside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import RtorrentProcess
from test_orphans import Bin, old, paths, results, scan_and_clean, source
from trees import Canaries

from rtorrentd.deletion import renames, trash_entry


def swap_for_link(directory: Path, target: Path, away: Path) -> None:
    """`directory` becomes a symlink to `target`; the real one is renamed to `away`."""
    os.rename(directory, away)
    directory.symlink_to(target, target_is_directory=True)


def once(action: Callable[[], None]) -> Callable[[], None]:
    """`action`, the first time only."""
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            action()

    return run


@pytest.fixture
def outside(tmp_path: Path, canaries: Canaries) -> Iterator[Path]:
    """A directory outside the allowed root holding a canary file and an old empty
    directory `hollow` (what a followed link would move or remove)."""
    there = tmp_path / "outside"
    canaries.add(there / "secret.bin")
    old(there / "secret.bin", b"")
    (there / "hollow").mkdir()
    old(there / "hollow", b"")
    yield there
    canaries.check()
    assert (there / "hollow").is_dir() and not (there / "hollow").is_symlink()


# --- between the scan and the move ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["file", "directory"])
async def test_an_orphan_moved_out_of_the_root_and_linked_back_stays_where_it_went(
    rtorrent: RtorrentProcess, tmp_path: Path, canaries: Canaries, kind: str
) -> None:
    # The same entry (same device and inode) is reached through the link: only a walk
    # from the root that never follows a link sees that it is outside now.
    dl = rtorrent.download_dir
    there = tmp_path / "outside"
    there.mkdir()
    (dl / "a").mkdir()
    if kind == "file":
        orphan = old(dl / "a" / "f.bin")
    else:
        orphan = dl / "a" / "hollow"
        orphan.mkdir()
        old(orphan, b"")
    bin_ = Bin(tmp_path / "bin")

    found, done = await scan_and_clean(
        [source(rtorrent)],
        [dl],
        bin_,
        between=lambda: swap_for_link(dl / "a", there / "a", there / "a"),
    )

    assert {str(orphan)} == paths(found)
    assert [] == bin_.moved
    (outcome,) = results(done).values()
    assert outcome.startswith("kept: "), outcome
    moved_out = there / "a" / orphan.name
    assert moved_out.is_file() if kind == "file" else moved_out.is_dir()
    if kind == "file":
        assert b"orphan data" == moved_out.read_bytes()


# --- at the very call that acts ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_directory_swapped_for_a_link_just_before_rmdir_is_not_followed(
    rtorrent: RtorrentProcess, tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dl = rtorrent.download_dir
    (dl / "a").mkdir()
    (dl / "a" / "hollow").mkdir()  # an orphan: an old empty directory, the same name
    old(dl / "a" / "hollow", b"")
    swap = once(lambda: swap_for_link(dl / "a", outside, dl / "a-real"))
    real_rmdir = os.rmdir

    def rmdir(path: Any, *args: Any, **kwargs: Any) -> None:
        swap()
        real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", rmdir)
    found, done = await scan_and_clean([source(rtorrent)], [dl], Bin(tmp_path / "bin"))
    monkeypatch.undo()

    assert {str(dl / "a" / "hollow")} == paths(found)
    assert {"removed"} == set(results(done).values())
    assert not (dl / "a-real" / "hollow").exists()  # the directory found, and only it


@pytest.mark.anyio
@pytest.mark.parametrize("swapped", ["its directory", "the file itself"])
async def test_a_swap_at_the_rename_into_the_bin_moves_nothing_from_outside(
    rtorrent: RtorrentProcess,
    tmp_path: Path,
    outside: Path,
    monkeypatch: pytest.MonkeyPatch,
    swapped: str,
) -> None:
    dl = rtorrent.download_dir
    (dl / "a").mkdir()
    orphan = old(dl / "a" / "secret.bin")  # the name of the canary outside
    if swapped == "its directory":
        swap = once(lambda: swap_for_link(dl / "a", outside, dl / "a-real"))
    else:

        def link_file() -> None:
            os.rename(orphan, dl / "a" / "real.bin")
            orphan.symlink_to(outside / "secret.bin")

        swap = once(link_file)
    real_rename = renames.rename_noreplace

    def rename(*args: Any) -> None:
        swap()
        real_rename(*args)

    monkeypatch.setattr(trash_entry, "rename_noreplace", rename)
    bin_ = Bin(tmp_path / "bin")
    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)
    monkeypatch.undo()

    assert {str(orphan)} == paths(found)
    moved = bin_.data() / "a" / "secret.bin"
    if swapped == "its directory":  # the file found, from its real directory
        assert b"orphan data" == moved.read_bytes() and not moved.is_symlink()
    else:  # the link put in its place goes; the file stays, the link's target too
        assert moved.is_symlink() and b"orphan data" == (dl / "a" / "real.bin").read_bytes()


# --- while the walk lists ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_directory_swapped_for_a_link_while_the_walk_enters_it_is_not_walked(
    rtorrent: RtorrentProcess, tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dl = rtorrent.download_dir
    old(dl / "a" / "inside.bin")
    loose = old(dl / "loose.bin")
    swap = once(lambda: swap_for_link(dl / "a", outside, tmp_path / "away"))
    real_open, real_scandir = os.open, os.scandir

    def opening(path: Any, *args: Any, **kwargs: Any) -> Any:
        if path in (str(dl / "a"), "a"):  # after the walk's lstat of it, before it opens it
            swap()
        return real_open(path, *args, **kwargs)

    def scandir(path: Any = ".") -> Any:
        if path == str(dl / "a"):
            swap()
        return real_scandir(path)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "scandir", scandir)
    bin_ = Bin(tmp_path / "bin")
    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_)
    monkeypatch.undo()

    assert {str(loose)} == paths(found)  # nothing of outside under the name dl/a/...
    assert {str(loose): "moved"} == results(done)
    assert str(dl / "a") in found.skipped
