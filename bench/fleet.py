"""Many instances in one daemon against as many single-instance daemons (issue 14).

Starts N real rtorrents (0.9.8), loads M tiny torrents into each (stopped, with
`load.raw`: no file descriptors, no hash checks), then runs for MINUTES:

1. one `rtorrentd run -c DIR` with N instance files (interval 1 minute);
2. N `rtorrentd run -c FILE` processes, one per rtorrent.

and reports the resident memory (peak and last), the CPU time per minute, and
whether every instance polled on schedule: the gaps between its successive
polls' starts (from `poll.done`: its time minus its `duration_ms`).

    .venv/bin/python bench/fleet.py [instances] [torrents] [minutes]

Goal (issue 14): 100 x 1,000 in one process, RSS <= 150 MiB, every instance on
schedule. The rules match nothing: the cost measured is polling and planning.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from harness import RtorrentProcess  # noqa: E402
from poll import load_all, make_torrents  # noqa: E402

INTERVAL = 60.0
RULES = """
[[rule]]
name = "ratio"
when = "complete and ratio >= 100"
action = "stop"

[[rule]]
name = "old"
when = "complete and seeding_time >= 3650d"
action = "stop"
"""
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def config(url: str) -> str:
    return f'[rtorrent]\nurl = "{url}"\n[daemon]\ninterval = "1m"\n{RULES}'


def rss(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024)


def cpu(pid: int) -> float:
    """User + system seconds."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


class Daemon:
    """`rtorrentd run` in a subprocess; its poll.done events by instance."""

    def __init__(self, path: Path) -> None:
        self.polls: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rtorrentd", "run", "-c", str(path), "--log-format", "json"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            event = json.loads(line)
            if event["event"] == "poll.done":
                end = datetime.fromisoformat(event["timestamp"]).timestamp()
                self.polls[event["instance"]].append(end - event["duration_ms"] / 1000)
            elif event["level"] in ("warning", "error"):
                self.errors.append(line.strip())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.reader.join(timeout=10)


def measure(daemons: list[Daemon], minutes: float) -> dict[str, float]:
    """Run them for `minutes`; memory and CPU summed over the processes."""
    pids = [d.process.pid for d in daemons]
    time.sleep(5)  # imports and the first polls
    start_cpu, began = sum(cpu(p) for p in pids), time.monotonic()
    peak = 0
    while time.monotonic() - began < minutes * 60:
        time.sleep(1)
        peak = max(peak, sum(rss(p)[0] for p in pids))
    used = sum(cpu(p) for p in pids) - start_cpu
    elapsed = time.monotonic() - began
    return {
        "rss_mib": sum(rss(p)[0] for p in pids) / 2**20,
        "peak_rss_mib": peak / 2**20,
        "hwm_mib": sum(rss(p)[1] for p in pids) / 2**20,
        "cpu_s_per_min": used / elapsed * 60,
    }


def schedule(daemons: list[Daemon], instances: int) -> str:
    """Polls per instance and the worst gap between successive poll starts."""
    polls = {name: starts for d in daemons for name, starts in d.polls.items()}
    gaps = [b - a for starts in polls.values() for a, b in itertools.pairwise(starts)]
    counts = sorted(len(s) for s in polls.values())
    worst = max(gaps, default=float("nan"))
    late = sum(1 for g in gaps if g > INTERVAL + 5)
    return (
        f"{len(polls)}/{instances} instances polled, {counts[0] if counts else 0}-"
        f"{counts[-1] if counts else 0} polls each; gaps {min(gaps, default=0):.1f}-{worst:.1f} s"
        f" (interval {INTERVAL:.0f} s), {late} more than 5 s late"
    )


def main() -> None:
    given = sys.argv[1:4]
    defaults = ["100", "1000", "3"]
    first, second, minutes_text = given + defaults[len(given) :]
    instances, torrents, minutes = int(first), int(second), float(minutes_text)
    with tempfile.TemporaryDirectory(prefix="rtorrentd-fleet-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        began = time.monotonic()
        files = make_torrents(root / "payload", torrents)
        rtorrents = []
        for i in range(instances):
            rt = stack.enter_context(
                RtorrentProcess(root / f"rt{i:03d}", version="0.9.8", clean_exit=False)
            )
            load_all(rt, files, start=False)
            rtorrents.append(rt)
        print(
            f"{instances} rtorrents x {torrents} torrents ready in {time.monotonic() - began:.0f} s"
        )
        conf = root / "conf"
        conf.mkdir()
        for i, rt in enumerate(rtorrents):
            (conf / f"rt{i:03d}.toml").write_text(config(rt.scgi_url))

        one = Daemon(conf)
        try:
            fleet = measure([one], minutes)
        finally:
            one.stop()
        print(f"one process, {instances} instances: {fleet}")
        print(f"  {schedule([one], instances)}; warnings/errors: {len(one.errors)}")
        for line in one.errors[:3]:
            print("   ", line[:200])

        many = []
        try:
            for i in range(instances):
                many.append(Daemon(conf / f"rt{i:03d}.toml"))
            single = measure(many, minutes)
        finally:
            for d in many:
                d.stop()
        print(f"{instances} processes, one instance each: {single}")
        print(f"  {schedule(many, instances)}")


if __name__ == "__main__":
    main()
