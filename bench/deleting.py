"""What deletions cost at 10,000 torrents: a poll deleting 20 against a no-op poll.

    .venv/bin/python bench/deleting.py [torrents] [--rtorrent=0.16]

Loads tiny single-file torrents stopped (`load.raw`, their payload on disk, as in
bench/poll.py), then times whole polls (`poll_once`) with a rule on the label:
- no-op: the rule matches nothing;
- dry-run: 20 torrents labelled, `dry_run=True` (every check, nothing changed);
- delete: 20 other torrents labelled and really deleted (unlink, d.erase).
Every rtorrent call is timed at the transport: the longest single call (the
snapshot apart) and the total time rtorrent was busy answering us per poll, the
figures of issue 15. Goal: the deleting poll <= 2 x the no-op poll plus the time
of the unlinks themselves, and no call but the snapshot over 200 ms.
"""

from __future__ import annotations

import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio
import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from harness import RtorrentProcess, poll_until  # noqa: E402
from poll import load_all, make_torrents  # noqa: E402

from rtorrentd.config.load import parse_config  # noqa: E402
from rtorrentd.config.model import Config  # noqa: E402
from rtorrentd.deletion import executor  # noqa: E402
from rtorrentd.deletion.carry_out import Dispose, carry_out  # noqa: E402
from rtorrentd.deletion.model import Deletion, Outcome  # noqa: E402
from rtorrentd.engine.memory import Memory  # noqa: E402
from rtorrentd.protocol.pieces import Pieces  # noqa: E402
from rtorrentd.rtorrent.client import RtorrentClient  # noqa: E402
from rtorrentd.rtorrent.transport import Transport, open_transport  # noqa: E402
from rtorrentd.service.poll import poll_once  # noqa: E402

TORRENTS = 10_000
DELETIONS = 20
RUNS = 3
SLOW_CALL_MS = 200
T = TypeVar("T")


@dataclass
class Timed:
    """A transport that times every call by method."""

    inner: Transport
    calls: list[tuple[str, float]] = field(default_factory=list)
    cpu_ms: float = 0.0  # the process's CPU time over the poll, worker threads included

    async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
        started = time.perf_counter()
        try:
            return await self.inner.request(body, content_type=content_type)
        finally:
            self.calls.append((_method(body), (time.perf_counter() - started) * 1000))

    async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
        started = time.perf_counter()
        try:
            return await self.inner.request_pieces(body, content_type=content_type)
        finally:
            self.calls.append((_method(body), (time.perf_counter() - started) * 1000))

    @property
    def url(self) -> str:
        return self.inner.url

    async def aclose(self) -> None:
        await self.inner.aclose()


def _method(body: bytes) -> str:
    if body.startswith((b"{", b"[")):  # JSON-RPC: the snapshot on 0.15.2+
        return "d.multicall2" if b"d.multicall" in body[:200] else "json"
    start = body.find(b"<methodName>") + len(b"<methodName>")
    return body[start : body.find(b"</methodName>")].decode()


def config(socket: Path, root: Path) -> Config:
    text = (
        f'[rtorrent]\nurl = "scgi://{socket}"\n'
        f'[safety]\nallowed_roots = ["{root}"]\nmax_deletes_per_poll = 1000\n'
        "max_delete_fraction = 1.0\n"
        '[[rule]]\nname = "doomed"\nwhen = \'label == "doomed"\'\naction = "delete"\n'
    )
    return parse_config(text, "bench")


async def one_poll(socket: Path, root: Path, *, dry_run: bool) -> tuple[float, Timed, int]:
    timed = Timed(open_transport(f"scgi://{socket}"))
    client = RtorrentClient(timed)
    cfg = config(socket, root)
    UNLINKS.clear()
    started, cpu = time.perf_counter(), time.process_time()
    result = await poll_once(client, cfg, Memory.empty(), dry_run=dry_run, now=time.time())
    timed.cpu_ms = (time.process_time() - cpu) * 1000
    return (time.perf_counter() - started) * 1000, timed, len(result.results)


# Wall-clock ms of each deletion's unlinks and rmdirs (`carry_out`), apart.
UNLINKS: list[float] = []


def timed_carry_out(deletion: Deletion, dispose: Dispose | None = None) -> Outcome:
    started = time.perf_counter()
    try:
        return carry_out(deletion, dispose)
    finally:
        UNLINKS.append((time.perf_counter() - started) * 1000)


executor.carry_out = timed_carry_out  # type: ignore[attr-defined]  # the disk time, measured


def label(process: RtorrentProcess, hashes: list[str], value: str) -> None:
    calls = [{"methodName": "d.custom1.set", "params": [h, value]} for h in hashes]
    process.call("system.multicall", calls, timeout=60)


def hash_checked(process: RtorrentProcess, hashes: list[str]) -> None:
    """Hash-check the torrents the polls act on: the content check before a deletion
    needs pieces rtorrent has verified (a torrent loaded stopped has none)."""
    process.call("system.multicall", [multicall("d.check_hash", h) for h in hashes], timeout=60)

    def all_checked() -> bool | None:
        calls = [multicall(m, h) for h in hashes for m in ("d.is_hash_checked", "d.hashing")]
        rows = process.call("system.multicall", calls, timeout=60)
        flags = [row[0] for row in rows]
        return (all(flags[0::2]) and not any(flags[1::2])) or None

    poll_until(all_checked, timeout=300, what="hash checks", interval=0.2)


def multicall(method: str, info_hash: str) -> dict[str, object]:
    return {"methodName": method, "params": [info_hash]}


def report(what: str, runs: list[tuple[float, Timed, int]]) -> float:
    best = min(ms for ms, _, _ in runs)
    _, timed, steps = min(runs, key=lambda r: r[0])
    snapshot = [c for c in timed.calls if c[0] in ("d.multicall2", "d.multicall")]
    others = [c for c in timed.calls if c not in snapshot]
    longest = max(others, key=lambda c: c[1], default=("-", 0.0))
    busy = sum(c[1] for c in timed.calls)
    print(
        f"{what:9s} best {best:7.0f} ms (median {statistics.median(r[0] for r in runs):7.0f}),"
        f" {steps} steps, {len(timed.calls)} calls, {len(snapshot)} snapshot(s)"
        f" {sum(c[1] for c in snapshot):.0f} ms; longest other call {longest[0]}"
        f" {longest[1]:.0f} ms{' OVER 200 ms' if longest[1] > SLOW_CALL_MS else ''};"
        f" total call time {busy:.0f} ms; our CPU {timed.cpu_ms:.0f} ms"
    )
    if "--calls" in sys.argv:
        by_method: dict[str, list[float]] = {}
        for method, ms in timed.calls:
            by_method.setdefault(method, []).append(ms)
        for method, times in sorted(by_method.items(), key=lambda kv: -sum(kv[1])):
            total, most = sum(times), max(times)
            print(f"    {method:28s} {len(times):4d} calls {total:8.1f} ms (max {most:.1f})")
    return best


def profiled(run: Callable[[], T]) -> T:
    """`run()`, under cProfile with `--profile` (the top 30 by own time printed)."""
    if "--profile" not in sys.argv:
        return run()
    profile = cProfile.Profile()
    try:
        return profile.runcall(run)
    finally:
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


def main() -> None:
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # figures only
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else TORRENTS
    versions = [a.partition("=")[2] for a in sys.argv if a.startswith("--rtorrent=")]
    version = versions[0] if versions else "0.9.8"
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-deleting-"))
    try:
        torrents = make_torrents(work / "payload", count)
        with RtorrentProcess(work / "rtorrent", version=version, clean_exit=False) as process:
            began = time.perf_counter()
            load_all(process, torrents, start=False)
            took = time.perf_counter() - began
            print(f"rtorrent {version}: {count} torrents loaded in {took:.0f} s")
            socket, root = process.socket_path, work / "payload"
            hashes = [t.info_hash for t in torrents]
            hash_checked(process, hashes[: 2 * DELETIONS])
            noop = [anyio.run(lambda: one_poll(socket, root, dry_run=False)) for _ in range(RUNS)]
            base = report("no-op", noop)
            label(process, hashes[:DELETIONS], "doomed")
            dry = [anyio.run(lambda: one_poll(socket, root, dry_run=True)) for _ in range(RUNS)]
            report("dry-run", dry)
            label(process, hashes[:DELETIONS], "")
            label(process, hashes[DELETIONS : 2 * DELETIONS], "doomed")
            deleting = [profiled(lambda: anyio.run(lambda: one_poll(socket, root, dry_run=False)))]
            spent = report("delete", deleting)
            unlinks = sum(UNLINKS)
            unlink = sum(1 for t in torrents[DELETIONS : 2 * DELETIONS] if t.payload_path.exists())
            assert unlink == 0, f"{unlink} payloads left"
            print(f"the unlinks themselves (carry_out): {unlinks:.0f} ms")
            goal = 2 * base + unlinks
            print(
                f"deleting poll / no-op poll: {spent / base:.1f} x; goal: <= 2 x no-op + unlinks"
                f" = {goal:.0f} ms, {spent / goal:.1f} x that"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
