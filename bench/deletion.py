"""How long the event loop stalls while one torrent of 40,000 files is deleted.

The issue: such a deletion held the loop for 1.5 s (no watchdog pings, a second
SIGTERM waited). A heartbeat task wakes every 5 ms while the files are planned
and unlinked the way the executor does it (worker threads), and, for comparison,
while the same work runs on the loop itself. Goal: the longest heartbeat gap off
the loop <= 250 ms, whatever the deletion takes (a watchdog needs a ping every
few seconds). What stalls the loop then is mostly the cyclic garbage collector:
its full collections, set off by the objects planning makes, stop every thread
for ~0.1 s at 40,000 files (under 0.06 s with `gc.disable()`).

    .venv/bin/python bench/deletion.py [files]
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from rtorrentd.deletion import executor  # noqa: E402
from rtorrentd.deletion.carry_out import carry_out  # noqa: E402
from rtorrentd.deletion.model import Deletion, Outcome  # noqa: E402
from rtorrentd.deletion.planning import plan_deletion  # noqa: E402
from rtorrentd.torrent import FileEntry  # noqa: E402

FILES = 40_000
BEAT = 0.005  # seconds between heartbeats
GOAL = 0.250  # seconds: the longest gap allowed off the loop


def make_files(root: Path, count: int) -> tuple[FileEntry, ...]:
    """`count` one-byte files, 100 to a directory."""
    entries = tuple(FileEntry(f"cd{i // 100}/{i}.bin", 1) for i in range(count))
    for i in range(0, count, 100):
        (root / f"cd{i // 100}").mkdir(parents=True)
    for entry in entries:
        fd = os.open(root / entry.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x")
        os.close(fd)
    return entries


async def off_loop(root: Path, entries: tuple[FileEntry, ...], allowed: str) -> Outcome:
    """As the executor does it: plan in one worker thread, unlink in another."""
    deletion: Deletion = await anyio.to_thread.run_sync(
        lambda: plan_deletion(str(root), entries, [allowed], (), multi_file=True)
    )
    return await executor.delete_files(deletion)


async def on_loop(root: Path, entries: tuple[FileEntry, ...], allowed: str) -> Outcome:
    """As before: the same work on the event loop."""
    return carry_out(plan_deletion(str(root), entries, [allowed], (), multi_file=True))


async def longest_gap(work: Callable[[], Awaitable[Outcome]]) -> tuple[float, float, Outcome]:
    """Run `work` beside a heartbeat; the longest gap between beats, and how long it took."""
    beats: list[float] = []
    finished = anyio.Event()

    async def heartbeat(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        beats.append(time.monotonic())
        task_status.started()
        while not finished.is_set():
            with anyio.move_on_after(BEAT):
                await finished.wait()
            beats.append(time.monotonic())

    async with anyio.create_task_group() as tasks:
        await tasks.start(heartbeat)
        began = time.monotonic()
        outcome = await work()
        took = time.monotonic() - began
        finished.set()
    return max(b - a for a, b in itertools.pairwise(beats)), took, outcome


async def measure(count: int) -> int:
    failed = False
    for name, how in (("off the loop", off_loop), ("on the loop", on_loop)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "big"
            entries = make_files(root, count)
            gap, took, outcome = await longest_gap(lambda: how(root, entries, tmp))  # noqa: B023
            assert len(outcome.deleted) == count and not root.exists()
            verdict = ""
            if how is off_loop:
                failed = gap > GOAL
                verdict = f"  (goal <= {GOAL * 1000:.0f} ms: {'FAIL' if failed else 'ok'})"
            print(
                f"{name:<13} {count} files planned and deleted in {took:5.2f} s, "
                f"longest loop stall {gap * 1000:7.1f} ms{verdict}"
            )
    return 1 if failed else 0


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else FILES
    return anyio.run(measure, count)


if __name__ == "__main__":
    sys.exit(main())
