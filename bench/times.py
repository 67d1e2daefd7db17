"""What tracking `seed_time` costs a poll, against a real rtorrent of 10,000 torrents.

Three figures: a poll (snapshot, remember, plan) with bench/poll.py's rules and
the same poll with a `seed_time` rule added, which fetches `d.is_active` and
`d.custom=rtorrentd.times` and accumulates (each the best of RUNS, interleaved);
and `save_times` on the first poll, when every record is unwritten, so it writes
its whole budget (engine.times.WRITES_PER_POLL). Goal: the extra of tracking,
and the write, each <= 10 % of the plain poll.

    .venv/bin/python bench/times.py [torrents] [--rtorrent=0.16]

The torrents are loaded stopped (bench/poll.py `--stopped`): fast to load, and
the figures do not depend on whether they seed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from harness import RtorrentProcess  # noqa: E402
from poll import load_all, make_config, make_torrents  # noqa: E402

from rtorrentd.conditions.parse import parse_condition  # noqa: E402
from rtorrentd.config.model import Action, Config, Rule  # noqa: E402
from rtorrentd.engine import plan as engine  # noqa: E402
from rtorrentd.engine.memory import Memory, remember  # noqa: E402
from rtorrentd.engine.times import WRITES_PER_POLL  # noqa: E402
from rtorrentd.rtorrent.client import RtorrentClient  # noqa: E402
from rtorrentd.rtorrent.transport import open_transport  # noqa: E402
from rtorrentd.service.poll import save_times, time_cap  # noqa: E402
from rtorrentd.vocabulary import name_kinds  # noqa: E402

TORRENTS = 10_000
RUNS = 9
GOAL = 0.10


def with_seed_time(config: Config) -> Config:
    keep = Rule("hnr", parse_condition("seed_time < 3d", name_kinds()), Action.KEEP, 0)
    return Config(
        config.source, config.rtorrent, config.daemon, config.safety, (keep, *config.rules)
    )


async def poll_ms(
    client: RtorrentClient, config: Config, memory: Memory, now: float
) -> tuple[float, Memory]:
    began = time.perf_counter()
    torrents = await client.snapshot(engine.fetch_names(config))
    memory = remember(memory, torrents, now, cap=time_cap(config))
    engine.plan(torrents, config, now, memory)
    return (time.perf_counter() - began) * 1000, memory


async def measure(path: str) -> None:
    client = RtorrentClient(open_transport(f"scgi://{path}", timeout=120.0))
    plain = make_config(f"scgi://{path}")
    tracked = with_seed_time(plain)
    plain_memory, memory, now = Memory.empty(), Memory.empty(), time.time()
    plain_ms, tracked_ms = float("inf"), float("inf")
    for run in range(RUNS):  # interleaved: a busy machine slows both alike
        took, plain_memory = await poll_ms(client, plain, plain_memory, now + 300 * run)
        plain_ms = min(plain_ms, took)
        took, memory = await poll_ms(client, tracked, memory, now + 300 * run)
        tracked_ms = min(tracked_ms, took)
    began = time.perf_counter()
    await save_times(client, memory)  # nothing saved yet: a full budget of records
    write_ms = (time.perf_counter() - began) * 1000
    extra = tracked_ms - plain_ms
    print(f"poll:                {plain_ms:7.1f} ms")
    print(f"poll with seed_time: {tracked_ms:7.1f} ms  (+{extra:.1f} ms, {extra / plain_ms:.1%})")
    print(f"write {WRITES_PER_POLL} records:    {write_ms:7.1f} ms  ({write_ms / plain_ms:.1%})")
    print(f"goal: each <= {GOAL:.0%} of a poll")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else TORRENTS
    versions = [a.partition("=")[2] for a in sys.argv if a.startswith("--rtorrent=")]
    version = versions[0] if versions else "0.9.8"
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-times-"))
    try:
        torrents = make_torrents(work / "payload", count)
        with RtorrentProcess(work / "rtorrent", version=version, clean_exit=False) as process:
            load_all(process, torrents, start=False)
            print(f"rtorrent {version}, {count} torrents")
            anyio.run(measure, str(process.socket_path))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
