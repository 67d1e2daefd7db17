"""Orphan cleanup on a case-insensitive filesystem (exFAT through FUSE, as USB disks
and NAS shares often are), with real rtorrents (0.9.8 and 0.16).

There `Album/a.bin` and `album/a.bin` name one file, rtorrent finds its data under
either spelling, and each spelling shows its own inode number: neither the path
the walk sees nor its identity is what the torrent lists.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from flow import album
from harness import RtorrentProcess, TorrentFactory
from test_orphans import Bin, old, paths, results, scan_and_clean, source
from test_sharing import exfat  # noqa: F401  (the fixture)


@pytest.mark.anyio
@pytest.mark.parametrize("root_written", ["dl", "DL"])
async def test_a_torrent_s_files_stored_under_another_spelling_are_not_orphans(
    exfat: Path,  # noqa: F811  (first: unmounted after rtorrent, which holds files there, stops)
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    tmp_path: Path,
    root_written: str,
) -> None:
    # The allowed root too may be written otherwise than stored (`DL` for `dl`).
    dl = exfat / "dl"
    seeded = album(torrent_factory, tmp_path / "made", name="Album")
    stored = dl / "ALBUM"  # copied from another machine, or made by another tool
    shutil.copytree(tmp_path / "made" / "Album", stored)
    files = [stored / os.fsdecode(entry.path) for entry in seeded.files]
    rtorrent.load(seeded, complete=True, directory=dl)  # found as dl/Album/...
    for path in files:
        old(path, b"")
    assert os.stat(dl / "Album" / "a.bin").st_ino != os.stat(stored / "a.bin").st_ino
    orphan = old(dl / "old.mkv")
    bin_ = Bin(exfat / "trash")  # on the same filesystem: orphans are renamed into it

    found, done = await scan_and_clean([source(rtorrent)], [exfat / root_written], bin_)

    assert "" == found.refused
    assert {str(orphan)} == paths(found)
    assert {str(orphan): "moved"} == results(done)
    assert all(path.is_file() for path in files)
