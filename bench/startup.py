"""Start-up of the `rtorrentd` command, as whole processes.

    .venv/bin/python bench/startup.py [runs]

Times `rtorrentd version` against a bare `python -c pass` (the interpreter's own
start-up, which no change of ours can remove), alternating the two so that a busy
machine slows both alike; prints the medians. Then lists what `version` and `check`
import, slowest first (`python -X importtime`). Goal (issue 15): version <= 80 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 21
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "rtorrentd version": [sys.executable, "-m", "rtorrentd", "version"],
}


def elapsed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def slowest_imports(args: list[str], top: int = 6) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the top-level imports `rtorrentd ARGS` makes."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rtorrentd", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("   "):
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, command in COMMANDS.items():
            times[name].append(elapsed(command))
    for name, values in times.items():
        print(f"{name:<20} median {statistics.median(values) * 1000:6.1f} ms over {RUNS} runs")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text('[rtorrent]\nurl = "scgi:///run/rtorrent/rpc.socket"\n')
        for args in (["version"], ["check", "-c", str(config)]):
            print(f"\nslowest top-level imports of `rtorrentd {' '.join(args)}`:")
            for micros, name in slowest_imports(args):
                print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
