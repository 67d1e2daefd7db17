"""`make demo`: rtorrentd against a private rtorrent, in a temporary directory.

Starts two headless rtorrent instances (a seeder and a peer that downloads from
it, so ratios are real), loads a handful of torrents, writes a config with the
rules users ask for most, shows what rtorrentd sees and would do, then runs the
daemon: it deletes what its rules match, deletes again when the peer has taken a
second torrent (SIGUSR1: poll now), reloads its config on SIGHUP, and stops
cleanly on SIGTERM. Everything lives in a temporary directory removed at the end.

It runs rtorrent 0.9.8 (Debian's), or 0.16 with ``make demo RTORRENT=0.16``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import VERSIONS, RtorrentProcess, TorrentFactory, make_swarm, random_bytes

# Which rtorrent: `make demo RTORRENT=0.16` (make passes it on in the environment).
VERSION = os.environ.get("RTORRENT") or "0.9.8"

CONFIG = """\
[rtorrent]
url = "{url}"
timeout = "10s"

[daemon]
interval = "10s"
dry_run = false

[safety]
allowed_roots = ["{download}"]
max_deletes_per_poll = 20
max_delete_fraction = 0.9

[[rule]]
name = "keep what is labelled keep"
when = 'label == "keep"'
action = "keep"

[[rule]]
name = "seeded enough"
when = "complete and ratio >= 1.0"
action = "delete"

[[rule]]
name = "stalled download"
when = "not complete and age >= 1s"
action = "stop"
"""


def rtorrentd(*args: str) -> None:
    """Run the rtorrentd command as a user would, echoing the command line."""
    print(f"\n$ rtorrentd {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "rtorrentd", *args], check=False)


class Daemon:
    """`rtorrentd run` as a subprocess; its console log is echoed, and each
    `poll.done` (or `config.reloaded`) line is counted so the demo can wait for it."""

    def __init__(self, config: Path) -> None:
        print(f"\n$ rtorrentd run -c {config} --log-format console", flush=True)
        command = [sys.executable, "-m", "rtorrentd", "run", "-c", str(config)]
        self.process = subprocess.Popen(
            [*command, "--log-format", "console"], stderr=subprocess.PIPE, text=True
        )
        self.seen: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._echo, daemon=True).start()

    def _echo(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            print("  " + line.rstrip(), flush=True)
            with self.changed:
                self.seen.append(line)
                self.changed.notify_all()

    def wait_for(self, event: str, count: int, timeout: float = 30.0) -> None:
        """Until `event` has been logged `count` times in all."""
        with self.changed:
            self.changed.wait_for(lambda: sum(event in s for s in self.seen) >= count, timeout)

    def signal(self, number: signal.Signals) -> None:
        print(f"\n$ kill -{number.name} <rtorrentd>", flush=True)
        self.process.send_signal(number)


def load_torrents(seeder: RtorrentProcess, factory: TorrentFactory) -> None:
    """A handful of torrents in the states a seedbox has."""
    download = seeder.download_dir
    album = factory(
        "Some Album (2024)",
        {"01 - Intro.flac": random_bytes(300_000, 1), "02 - Song.flac": random_bytes(500_000, 2)},
        dest_dir=download,
    )
    seeder.load(album)
    keep = factory("Family Videos", random_bytes(200_000, 3), dest_dir=download)
    seeder.load(keep, commands=('d.custom1.set="keep"',))
    partial = factory(
        "Half Downloaded.iso", random_bytes(400_000, 4), dest_dir=download, write_payload=False
    )
    seeder.load(partial)
    fresh = factory("Fresh Release.mkv", random_bytes(250_000, 5), dest_dir=download)
    seeder.load(fresh)


def main() -> int:
    if VERSION not in VERSIONS:
        print(f"RTORRENT={VERSION}: the demo runs {' or '.join(VERSIONS)}", file=sys.stderr)
        return 2
    print(f"rtorrent {VERSION}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rtorrentd-demo-") as tmp:
        root = Path(tmp)
        with (
            RtorrentProcess(root / "seeder", version=VERSION) as seeder,
            RtorrentProcess(root / "peer", version=VERSION) as peer,
        ):
            factory = TorrentFactory(root / "payload")
            load_torrents(seeder, factory)
            popular = factory(
                "Popular Thing.mkv", random_bytes(2_000_000, 6), dest_dir=seeder.download_dir
            )
            print("A peer downloads 'Popular Thing.mkv' from our rtorrent ...", flush=True)
            started = time.monotonic()
            swarm = make_swarm(seeder, peer, popular)
            print(
                f"... done in {time.monotonic() - started:.2f} s, "
                f"our ratio is {swarm.seeder_ratio / 1000:.2f}"
            )
            config = root / "config.toml"
            config.write_text(CONFIG.format(url=seeder.scgi_url, download=seeder.download_dir))
            print(f"\nConfig ({config}):\n{config.read_text()}")
            rtorrentd("list", "-c", str(config))
            rtorrentd("check", "-c", str(config))
            rtorrentd("plan", "-c", str(config))
            run_daemon(config, seeder, peer, factory)
            rtorrentd("list", "-c", str(config))
    return 0


def run_daemon(
    config: Path, seeder: RtorrentProcess, peer: RtorrentProcess, factory: TorrentFactory
) -> None:
    """The daemon at work: deletions as rules match, a reload, a clean stop."""
    daemon = Daemon(config)
    daemon.wait_for("poll.done", 1)
    fresh = factory("Fresh Release.mkv", random_bytes(250_000, 5), dest_dir=seeder.download_dir)
    print("\nThe peer now downloads 'Fresh Release.mkv' too ...", flush=True)
    make_swarm(seeder, peer, fresh)
    daemon.signal(signal.SIGUSR1)  # poll now, rather than at the next interval
    daemon.wait_for("poll.done", 2)
    config.write_text(config.read_text().replace('"keep what is labelled keep"', '"keep labelled"'))
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config.re", 1)
    daemon.signal(signal.SIGTERM)
    print(f"rtorrentd exited with {daemon.process.wait(timeout=30)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
