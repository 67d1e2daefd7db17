"""What an orphan scan costs at 1,000,000 files (issue 13.2).

Two figures:

1. The scan alone, at FILES empty files (1,000 per directory, in a temporary
   directory on disk), with 10,000 torrents simulated by their listed set: half
   the files listed (as `orphan_listing` indexes them: path, directories, lstat),
   the other half orphans, of which `max_files` are kept and the rest counted.
   The same walk with nothing listed shows that memory does not grow with the
   tree: only with the listed set.
2. Against a real rtorrent: TORRENTS stopped multi-file torrents (their payload
   on disk, so the listing is trusted), read whole (`read_listing`: one
   `d.multicall2`, `f.multicall` of every torrent) and scanned with the rest of
   the files as orphans.

Each figure: wall time, CPU time (this process; rtorrent's CPU apart) and peak RSS
(ru_maxrss, which only grows: each stage's figure includes the ones before).

    .venv/bin/python bench/orphans.py [files] [--torrents=N] [--per-torrent=K]
                                      [--rtorrent=0.16] [--only=scan|rtorrent] [--dir=D]

Files are made in /dev/shm (a tmpfs) unless `--dir` says where.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from harness import RtorrentProcess, poll_until  # noqa: E402
from harness.torrents import TorrentFile, make_torrent  # noqa: E402

from rtorrentd.config.model import OrphanSettings  # noqa: E402
from rtorrentd.deletion.orphan_listing import Source, Stored, _add_exact, read_listing  # noqa: E402
from rtorrentd.deletion.orphans import scan  # noqa: E402
from rtorrentd.engine.orphans import Listed  # noqa: E402
from rtorrentd.rtorrent.client import RtorrentClient  # noqa: E402
from rtorrentd.rtorrent.transport import open_transport  # noqa: E402

FILES = 1_000_000
PER_DIRECTORY = 1_000
TORRENTS = 10_000
PER_TORRENT = 10
LATER = 3 * 86400.0  # the scan's clock is this far ahead: every file made here is old
SETTINGS = OrphanSettings(min_age=86400.0, max_files=100, max_bytes=10 * 1024**3)
LOAD_BATCH = 200
T = TypeVar("T")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def measured(what: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    print(
        f"  {what}: {time.perf_counter() - wall:.2f} s wall, "
        f"{time.process_time() - cpu:.2f} s CPU, peak RSS {peak_mib():.0f} MiB"
    )


def empty_files(top: Path, count: int, prefix: str = "f") -> list[Path]:
    """`count` empty files, `PER_DIRECTORY` a directory; returns the directories."""
    directories = []
    for number in range(0, count, PER_DIRECTORY):
        directory = top / f"{prefix}{number // PER_DIRECTORY:05d}"
        directory.mkdir(parents=True)
        directories.append(directory)
        base = os.fsencode(directory)
        for i in range(min(PER_DIRECTORY, count - number)):
            os.close(os.open(base + b"/%d.bin" % i, os.O_CREAT | os.O_WRONLY, 0o644))
    return directories


def listed_half(directories: list[Path]) -> Listed:
    """Every file of every other directory, listed as `orphan_listing` indexes one."""
    listed = Listed()
    for directory in directories[::2]:
        spellings = Stored()  # as `orphan_listing` has one per round of torrents
        for name in os.listdir(directory):
            _add_exact(listed, f"{directory}/{name}", spellings)
    return listed


def run_scan(root: Path, listed: Listed) -> tuple[int, int, int]:
    """Walk and classify as `scan` does once its listing is read (no rtorrent)."""
    from rtorrentd.deletion.orphan_walk import Owned
    from rtorrentd.deletion.orphans import _find, _Judge
    from rtorrentd.engine.orphans import Budget, compile_excludes

    budget = Budget(SETTINGS.max_files, SETTINGS.max_bytes)
    judge = _Judge(listed, SETTINGS, compile_excludes(()), ("bench",))
    found = _find([str(root)], Owned(frozenset(), frozenset()), judge, time.time() + LATER, budget)
    return found.stats.entries, len(found.orphans), budget.held


def scan_figure(work: Path, files: int) -> None:
    print(f"1. the scan alone: {files} empty files, half of them listed")
    root = work / "scan"
    began = time.perf_counter()
    directories = empty_files(root, files)
    print(f"  made in {time.perf_counter() - began:.1f} s; peak RSS {peak_mib():.0f} MiB")
    with measured("walk, nothing listed"):
        entries, kept, held = run_scan(root, Listed())
    print(f"    {entries} entries; {kept} orphans kept, {held} beyond the caps")
    with measured(f"index {files // 2} listed files (10,000 torrents x {files // 20_000})"):
        listed = listed_half(directories)
    with measured("walk and classify"):
        entries, kept, held = run_scan(root, listed)
    print(f"    {entries} entries; {kept} orphans kept, {held} beyond the caps")
    shutil.rmtree(root)


def make_torrents(payload: Path, count: int, per: int) -> list[TorrentFile]:
    return [
        make_torrent(
            payload,
            f"t{i:05d}",
            {f"d/{j}.bin": b"%d:%d" % (i, j) for j in range(per)},
            piece_length=16384,
        )
        for i in range(count)
    ]


def load_stopped(process: RtorrentProcess, torrents: list[TorrentFile]) -> None:
    for first in range(0, len(torrents), LOAD_BATCH):
        calls = [
            {
                "methodName": "load.raw",
                "params": ["", xmlrpc.client.Binary(t.data), f"d.directory.set={t.directory}"],
            }
            for t in torrents[first : first + LOAD_BATCH]
        ]
        process.call("system.multicall", calls, timeout=120)
    poll_until(
        lambda: len(process.call("download_list", "", "main", timeout=60)) >= len(torrents),
        timeout=900,
        what=f"{len(torrents)} torrents to be listed",
        interval=1.0,
    )


def timed(what: str, run: Callable[[], T]) -> T:
    with measured(what):
        return run()


def rtorrent_figure(work: Path, files: int, count: int, per: int, version: str) -> None:
    print(f"2. rtorrent {version}: {count} torrents x {per} files, {files} files in all")
    with RtorrentProcess(work / "rtorrent", version=version, clean_exit=False) as process:
        download = process.download_dir
        began = time.perf_counter()
        torrents = make_torrents(download, count, per)
        load_stopped(process, torrents)
        orphans = max(0, files - count * per)
        empty_files(download / "orphans", orphans, "o")
        print(
            f"  made and loaded in {time.perf_counter() - began:.1f} s; "
            f"{orphans} more files as orphans; peak RSS {peak_mib():.0f} MiB"
        )
        url = f"scgi://{process.socket_path}"
        source = Source("bench", url, RtorrentClient(open_transport(url, timeout=300.0)))

        async def listing() -> int:
            return (await read_listing([source])).listed.files

        listed = timed(
            "read the listing (d.multicall2, f.multicall, lstat)", lambda: anyio.run(listing)
        )
        print(f"    {listed} listed files")

        async def whole() -> tuple[str, int, int, int]:
            found, _ = await scan([source], [str(download)], SETTINGS, now=time.time() + LATER)
            return found.refused, found.entries, len(found.orphans), found.held

        refused, entries, kept, held = timed(
            "a whole scan (listing, walk, classify)", lambda: anyio.run(whole)
        )
        if refused:
            print(f"    REFUSED: {refused}")
        print(f"    {entries} entries; {kept} orphans kept, {held} beyond the caps")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    options = dict(a[2:].partition("=")[::2] for a in sys.argv[1:] if a.startswith("--"))
    files = int(args[0]) if args else FILES
    count = int(options.get("torrents", TORRENTS))
    per = int(options.get("per-torrent", PER_TORRENT))
    version = options.get("rtorrent", "0.9.8")
    only = options.get("only", "")
    # A tmpfs by default: a million files are made in seconds there, not minutes,
    # and the figures are the scan's, not the disk's (`--dir=` for a disk).
    base = options.get("dir") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-orphans-", dir=base))
    print(f"in {work}")
    try:
        if only in ("", "scan"):
            scan_figure(work, files)
        if only in ("", "rtorrent"):
            rtorrent_figure(work, files, count, per, version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
