"""Orphan cleanup and the directories rtorrent watches for new .torrent files
(`directory.watch.added`, inotify), with real rtorrents (0.9.8 and 0.16).

A watch directory is empty whenever nothing new arrived: old and empty, it looked
like an orphan, and removing it silently ends rtorrent's watch (a directory made
again by that name is not watched) and makes every tool that drops .torrent files
there fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import RtorrentProcess
from test_orphans import Bin, old, paths, results, scan_and_clean, source

from rtorrentd.deletion.orphan_listing import watched_directories


@pytest.mark.anyio
async def test_a_directory_rtorrent_watches_stays_when_empty(
    make_rtorrent: Callable[..., RtorrentProcess], tmp_path: Path
) -> None:
    root = tmp_path / "data"
    watch = root / "watch"
    watch.mkdir(parents=True)
    hollow = root / "hollow"
    hollow.mkdir()
    watching = [f'directory.watch.added = "{watch}/", load.start']
    with make_rtorrent(tmp_path / "rt", clean_exit=False, extra_config=watching) as rt:
        old(watch, b"")
        old(hollow, b"")

        found, done = await scan_and_clean([source(rt)], [root], Bin(tmp_path / "bin"))

        assert {str(hollow)} == paths(found)
        assert {str(hollow): "removed"} == results(done)
        assert watch.is_dir() and (str(watch),) == found.watched


def test_watched_directories_are_read_from_proc(tmp_path: Path) -> None:
    # /proc/PID/fdinfo of an inotify descriptor: the kernel's dev_t (major << 20 |
    # minor), the inode in hex; other descriptors and unreadable ones are skipped.
    proc = tmp_path / "proc"
    fdinfo = proc / "42" / "fdinfo"
    fdinfo.mkdir(parents=True)
    (proc / "42" / "fd").mkdir()
    (proc / "42" / "fd" / "3").symlink_to("anon_inode:inotify")
    (proc / "42" / "fd" / "4").symlink_to("/var/log/rtorrent.log")
    (proc / "42" / "fd" / "5").symlink_to("anon_inode:inotify")
    (fdinfo / "3").write_text(
        "pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t1038\n"
        "inotify wd:1 ino:2763e9 sdev:fe00000 mask:40003c8 ignored_mask:0 "
        "fhandle-bytes:8 fhandle-type:1 f_handle:e963270030dc49c0\n"
        "inotify wd:2 ino:10 sdev:800011 mask:40003c8 ignored_mask:0\n"
    )
    (fdinfo / "4").write_text("inotify wd:9 ino:1 sdev:1 mask:0\n")  # not inotify

    found = watched_directories([42, 43], proc=str(proc))

    assert {(os.makedev(254, 0), 0x2763E9), (os.makedev(8, 17), 0x10)} == found
