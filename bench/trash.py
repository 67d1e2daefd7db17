"""What the recycle bin costs: `trash` against `delete`, per torrent.

    .venv/bin/python bench/trash.py [--rtorrent=0.16]

1. Whole polls against a real rtorrent: 20 labelled torrents (3 files each, hash-
   checked) are deleted by one poll, 20 others trashed by the next; the poll's
   time divided by 20 is the cost per torrent, every check included (exact names,
   content, sharing, journal, stop, close, session save, erase). Best of 3.
2. The last step alone (`carry_out`): one 2,000-file torrent's files unlinked,
   or renamed into a bin entry (manifest written ahead, committed after).
3. Reading a full bin, as every poll does two or three times (`trash.entries`):
   500 entries of 100 files each, the first read and then the median of 5 (the
   manifests are parsed once while unchanged, `trash_manifests`). `--bin` alone.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import RtorrentProcess, TorrentFactory, random_bytes  # noqa: E402

from rtorrentd.config.load import parse_config  # noqa: E402
from rtorrentd.config.model import Config  # noqa: E402
from rtorrentd.deletion import trash, trash_manifests  # noqa: E402
from rtorrentd.deletion.carry_out import carry_out  # noqa: E402
from rtorrentd.deletion.planning import plan_deletion  # noqa: E402
from rtorrentd.engine.memory import Memory  # noqa: E402
from rtorrentd.rtorrent.client import RtorrentClient  # noqa: E402
from rtorrentd.rtorrent.transport import open_transport  # noqa: E402
from rtorrentd.service.poll import poll_once  # noqa: E402
from rtorrentd.torrent import FileEntry  # noqa: E402

PER_POLL = 20
RUNS = 3
FILES = 2_000


def config(rt: RtorrentProcess, bin_dir: Path, action: str, label: str) -> Config:
    text = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n'
        f'[safety]\nallowed_roots = ["{rt.download_dir}"]\nmax_delete_fraction = 1.0\n'
        f'[trash]\npath = "{bin_dir}"\n'
        f'[[rule]]\nname = "r"\nwhen = \'label == "{label}"\'\naction = "{action}"\n'
    )
    return parse_config(text, "bench.toml")


def load_batch(rt: RtorrentProcess, factory: TorrentFactory, label: str) -> None:
    for n in range(PER_POLL):
        torrent = factory(
            f"{label}-{n}",
            {f"f{k}.bin": random_bytes(40_000, hash((label, n, k)) & 0xFFFF) for k in range(3)},
            dest_dir=rt.download_dir,
        )
        rt.load(torrent, commands=(f'd.custom1.set="{label}"',), complete=True)


async def timed_poll(rt: RtorrentProcess, cfg: Config) -> float:
    client = RtorrentClient(open_transport(rt.scgi_url, timeout=30.0))
    started = time.perf_counter()
    result = await poll_once(client, cfg, Memory.empty(), dry_run=False, now=time.time())
    elapsed = time.perf_counter() - started
    done = [r for r in result.results if r.result.value == "done"]
    assert len(done) == PER_POLL, [r.reason for r in result.results if r.result.value != "done"]
    return elapsed * 1000 / PER_POLL


def polls(version: str) -> dict[str, float]:
    best: dict[str, float] = {"delete": float("inf"), "trash": float("inf")}
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-bench-trash-"))
    try:
        factory = TorrentFactory(work / "payload")
        with RtorrentProcess(work / "rt", version=version, clean_exit=False) as rt:
            for run in range(RUNS):
                for action in ("delete", "trash"):
                    label = f"{action}{run}"
                    load_batch(rt, factory, label)
                    cfg = config(rt, work / "bin", action, label)
                    best[action] = min(best[action], anyio.run(timed_poll, rt, cfg))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return best


def last_step() -> dict[str, float]:
    """carry_out of a 2,000-file torrent: unlink against rename into an entry."""
    found: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-bench-trash-"))
    try:
        for action in ("delete", "trash"):
            root = work / "dl"
            files = [FileEntry(f"d{k // 100}/f{k}.bin", 1000) for k in range(FILES)]
            for entry in files:
                path = root / "big" / entry.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"x" * 1000)
            deletion = plan_deletion(str(root / "big"), files, [str(root)], (), multi_file=True)
            started = time.perf_counter()
            if action == "delete":
                carry_out(deletion)
            else:
                items = tuple(
                    trash.Item.planned("/".join(f.location.parts), f.identity, f.freed)
                    for f in deletion.files
                    if f.identity is not None
                )
                anchor = deletion.files[0].location
                draft = trash.Manifest(
                    "torrent", time.time(), "bench", anchor.anchor, anchor.anchor_key, items
                )
                with trash.create_entry(str(work / "bin"), draft, "bench") as writer:
                    outcome = carry_out(deletion, writer.take)
                    assert outcome.complete
                    writer.commit()
            found[action] = (time.perf_counter() - started) * 1000
            shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return found


def bin_reads(entries: int = 500, files: int = 100) -> tuple[float, float]:
    """ms of `trash.entries` over a bin of `entries` x `files`: first, then median."""
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-bench-bin-"))
    try:
        root, bin_dir = work / "data", str(work / "bin")
        for number in range(entries):
            paths = [root / f"t{number}" / f"f{k}.bin" for k in range(files)]
            paths[0].parent.mkdir(parents=True)
            for path in paths:
                path.write_bytes(b"x")
            trash.trash_paths(bin_dir, str(root), [str(p) for p in paths], "bench")
        # A manifest changed in the last RACY_SECONDS is read again each time
        # (its ctime cannot be set back): wait until the bin's have settled.
        time.sleep(trash_manifests.RACY_SECONDS + 0.5)
        took = []
        for _ in range(6):
            started = time.perf_counter()
            assert len(trash.entries(bin_dir)) == entries
            took.append((time.perf_counter() - started) * 1000)
        return took[0], statistics.median(took[1:])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    if "--bin" in sys.argv:
        first, then = bin_reads()
        print(f"reading a bin of 500 entries x 100 files: {first:.0f} ms, then {then:.0f} ms")
        return
    version = "0.16" if "--rtorrent=0.16" in sys.argv else "0.9.8"
    per_torrent = polls(version)
    print(f"rtorrent {version}: a poll acting on {PER_POLL} torrents of 3 files, per torrent")
    for action, ms in per_torrent.items():
        print(f"  {action:<6} {ms:7.1f} ms/torrent")
    ratio = per_torrent["trash"] / per_torrent["delete"]
    print(f"  trash / delete: {ratio:.2f}x")
    step = last_step()
    print(f"the last step alone, one torrent of {FILES:,} files:")
    for action, ms in step.items():
        print(f"  {action:<6} {ms:7.1f} ms ({ms * 1000 / FILES:.0f} us/file)")
    first, then = bin_reads()
    print(f"reading a bin of 500 entries x 100 files: {first:.0f} ms, then {then:.0f} ms")


if __name__ == "__main__":
    main()
