"""Time one in-process poll against a real rtorrent holding 10,000 torrents.

A poll is `client.snapshot(engine.fetch_names(config))`, `memory.remember` and
`engine.plan` with the usual three rules. The yardstick is what rtorrent itself
needs for the same `d.multicall2`: a client that sends the same request bytes on
a raw socket and only reads the reply to EOF. Goal: poll <= 1.5 x that.

An rtorrent with JSON-RPC (0.15.2+) is measured twice, the snapshot over XML-RPC
and over JSON-RPC, each against rtorrent's raw answer time to the same request in
that protocol; the last line compares the two polls, which is what decides the
protocol the client uses (`Dialect.snapshot_over_json`).

    .venv/bin/python bench/poll.py [torrents] [--stopped] [--profile] [--rtorrent=0.16]
    .venv/bin/python bench/poll.py --socket=/path/rpc.socket [--profile] [--gc-freeze]
                                   [--gc-default]

The torrents are tiny single-file ones (1 byte .. 1 KiB of payload) loaded with
`load.raw_start` in `system.multicall` batches, without waiting for each; rtorrent
hash-checks them, so they are complete, open and seeding (to an unreachable
tracker). `--stopped` loads them with `load.raw` instead: incomplete and closed,
which needs no file descriptors. `--socket=` measures an rtorrent already running
and loaded instead (loading 10,000 started torrents takes a minute or more, most
of it rtorrent hash-checking them). Then each stage of the poll is timed on its own
(best of RUNS) to say where the time goes; `--profile` adds a cProfile of the
conversion and planning. The time the cyclic garbage collector takes inside each
poll is shown too, with the collector's thresholds the daemon sets
(`service.daemon.tune_collector`), or Python's with `--gc-default`; `--gc-freeze`
calls `gc.freeze()` after each poll, so that it stops walking the objects that
outlive a poll.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import random
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gcclock import GcClock  # noqa: E402
from harness import RtorrentProcess, TorrentFile, make_torrent, poll_until  # noqa: E402

from rtorrentd.conditions.parse import parse_condition  # noqa: E402
from rtorrentd.config.model import (  # noqa: E402
    Action,
    Config,
    DaemonSettings,
    RtorrentSettings,
    Rule,
    Safety,
)
from rtorrentd.engine import plan as engine  # noqa: E402
from rtorrentd.engine.memory import Memory, remember  # noqa: E402
from rtorrentd.protocol import scgi  # noqa: E402
from rtorrentd.rtorrent.client import RtorrentClient, _layout_for, _rows_to_torrents  # noqa: E402
from rtorrentd.rtorrent.dialect import Dialect  # noqa: E402
from rtorrentd.rtorrent.rows import Layout, torrents_from_rows  # noqa: E402
from rtorrentd.rtorrent.transport import open_transport  # noqa: E402
from rtorrentd.rtorrent.wire import JSON_RPC, XML_RPC, JsonChoice, Wire  # noqa: E402
from rtorrentd.service.daemon import tune_collector  # noqa: E402
from rtorrentd.torrent import Torrent  # noqa: E402
from rtorrentd.vocabulary import name_kinds  # noqa: E402

TORRENTS = 10_000
RUNS = 9
GOAL = 1.5
BATCH = 250  # torrents per system.multicall: ~150 KB of request
RULES = (
    ("ratio", "complete and ratio >= 2.0"),
    ("stale", "complete and ratio >= 0.5 and idle >= 14d and leechers == 0"),
    ("old", "complete and seeding_time >= 60d"),
)


def make_config(url: str) -> Config:
    kinds = name_kinds()
    rules = tuple(
        Rule(name, parse_condition(text, kinds), Action.DELETE, i + 1)
        for i, (name, text) in enumerate(RULES)
    )
    return Config(
        source="bench",
        rtorrent=RtorrentSettings(url=url),
        daemon=DaemonSettings(),
        safety=Safety(),
        rules=rules,
    )


# --- loading ------------------------------------------------------------------------


def make_torrents(directory: Path, count: int) -> list[TorrentFile]:
    rng = random.Random(20_240_601)
    return [
        make_torrent(directory, f"tiny-{i:05d}.bin", rng.randbytes(rng.randint(1, 1024)))
        for i in range(count)
    ]


def load_all(process: RtorrentProcess, torrents: Sequence[TorrentFile], start: bool) -> None:
    """Load in batches through system.multicall; rtorrent adds them a few ms later."""
    method = "load.raw_start" if start else "load.raw"
    for first in range(0, len(torrents), BATCH):
        calls = [
            {
                "methodName": method,
                "params": ["", xmlrpc.client.Binary(t.data), f"d.directory.set={t.directory}"],
            }
            for t in torrents[first : first + BATCH]
        ]
        process.call("system.multicall", calls, timeout=60)
    poll_until(
        lambda: _count(process, "d.hash=") >= len(torrents),
        timeout=600,
        what=f"{len(torrents)} torrents to be listed",
        interval=0.5,
    )
    if start:
        poll_until(
            lambda: _count(process, "d.complete=") >= len(torrents),
            timeout=600,
            what="every torrent to be hash-checked complete",
            interval=0.5,
        )


def _count(process: RtorrentProcess, command: str) -> int:
    """How many torrents have a true `command`; 0 while rtorrent is too busy to answer."""
    try:
        rows = process.call("d.multicall2", "", "main", command, timeout=30)
    except OSError:
        return 0
    return sum(1 for row in rows if row[0])


# --- timing -------------------------------------------------------------------------


def raw_exchange(path: str, request: bytes) -> int:
    """What rtorrent costs: send the request, read the reply to EOF, nothing more."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        size = 0
        while chunk := sock.recv(1 << 18):
            size += len(chunk)
    return size


def times(run: Callable[[], object], runs: int = RUNS) -> list[float]:
    """Wall-clock ms of each of `runs` calls."""
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        result.append((time.perf_counter() - start) * 1000)
    return result


async def async_times(run: Callable[[], Awaitable[object]], runs: int = RUNS) -> list[float]:
    """Wall-clock ms of each of `runs` awaited calls."""
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        await run()
        result.append((time.perf_counter() - start) * 1000)
    return result


class Poller:
    """The daemon's poll, in process: snapshot, remember, plan; the snapshot over `wire`."""

    def __init__(self, socket_path: str, wire: Wire) -> None:
        url = f"scgi://{socket_path}"
        self.config = make_config(url)
        self.names = engine.fetch_names(self.config)
        self.client = RtorrentClient(open_transport(url))
        self.wire = wire
        if wire is XML_RPC:
            # What the client does where JSON-RPC does not work: XML-RPC throughout.
            self.client._json = JsonChoice(off="bench/poll.py measures XML-RPC")
        self.memory = Memory()
        self.torrents: tuple[Torrent, ...] = ()
        self.steps = 0
        self.freeze = False

    async def poll(self) -> None:
        now = time.time()
        self.torrents = await self.client.snapshot(self.names)
        self.memory = remember(self.memory, self.torrents, now)
        self.steps = len(engine.plan(self.torrents, self.config, now, self.memory).steps)
        if self.freeze:
            # What a daemon could do after each poll: what survives it (memory, the
            # snapshot) is never cyclic garbage, so the collector need not walk it.
            gc.freeze()


async def measure(path: str, profile: bool, freeze: bool) -> None:
    """Each protocol this rtorrent speaks; then XML-RPC against JSON-RPC."""
    dialect = await RtorrentClient(open_transport(f"scgi://{path}")).dialect()
    wires = (XML_RPC, JSON_RPC) if dialect.snapshot_over_json else (XML_RPC,)
    print(f"rtorrent {dialect.text}: {' and '.join(w.name for w in wires)}")
    polls = {wire.name: await measure_wire(path, dialect, wire, profile, freeze) for wire in wires}
    if len(polls) == 2:
        xml, json = polls[XML_RPC.name], polls[JSON_RPC.name]
        faster = JSON_RPC.name if json < xml else XML_RPC.name
        print(f"\npoll, best: XML-RPC {xml:.1f} ms, JSON-RPC {json:.1f} ms: {faster} is faster")


async def measure_wire(
    path: str, dialect: Dialect, wire: Wire, profile: bool, freeze: bool
) -> float:
    """Poll and raw answer, alternating; then the stages. Returns the best poll in ms."""
    poller = Poller(path, wire)
    poller.freeze = freeze
    collector = GcClock()
    commands = _layout_for(frozenset(poller.names)).commands
    body = wire.encode(dialect.multicall, ["", "main", *commands])
    request = scgi.encode_request(body, content_type=wire.content_type)

    await poller.poll()  # warm up: first memory, caches
    if poller.client._json.use_json(dialect) != (wire is JSON_RPC):
        raise SystemExit(f"the client would not take the snapshot over {wire.name}")
    # Alternate the two, so that both see the same load on a shared machine.
    raw_times, poll_times, gc_times = [], [], []
    for _ in range(RUNS):
        raw_times += times(lambda: raw_exchange(path, request), 1)
        before = collector.total
        poll_times += await async_times(poller.poll, 1)
        gc_times.append(collector.total - before)
    size = raw_exchange(path, request)
    raw_best, poll_best = min(raw_times), min(poll_times)
    paired = statistics.median(p / r for p, r in zip(poll_times, raw_times, strict=True))

    print(f"\n--- {wire.name} ---")
    print(f"{len(poller.torrents)} torrents, {len(commands)} commands, reply {size / 1e6:.2f} MB")
    print(f"  {dialect.multicall} {' '.join(commands)}")
    print(f"  {poller.steps} steps planned; best of {RUNS}, raw and poll alternating")
    for who, runs in (
        ("rtorrent, raw socket: ", raw_times),
        ("our poll, in process: ", poll_times),
    ):
        print(f"{who}  best {min(runs):6.1f} ms, median {statistics.median(runs):6.1f} ms")
    verdict = "ok" if poll_best <= GOAL * raw_best else "OVER GOAL"
    print(f"ratio of bests:         {poll_best / raw_best:.2f} x (goal <= {GOAL}: {verdict})")
    print(f"median of paired ratios {paired:.2f} x")
    shown = ", ".join(f"{ms:.0f}" for ms in gc_times)
    frozen = ", gc.freeze after each" if freeze else ""
    print(f"cyclic GC inside each poll: {shown} ms (thresholds {gc.get_threshold()}{frozen})")
    reply = await stages(poller, dialect, body)
    if profile:
        profile_stages(poller, dialect, reply)
    return poll_best


async def stages(poller: Poller, dialect: Dialect, body: bytes) -> bytes:
    """Each stage of the poll on its own, best of RUNS, to say where the time goes."""
    transport, wire = poller.client.transport, poller.wire
    reply = await transport.request(body, content_type=wire.content_type)
    plan = _layout_for(frozenset(poller.names))
    value = wire.decode(reply)
    torrents = _rows_to_torrents(plan, reply, dialect, dialect.multicall, wire)
    now = time.time()
    memory = remember(poller.memory, torrents, now)
    timings = {
        "transport.request": min(
            await async_times(lambda: transport.request(body, content_type=wire.content_type))
        ),
        f"decode ({wire.name})": min(times(lambda: wire.decode(reply))),
        "rows -> Torrents": min(times(lambda: _convert(plan, value))),
        "thread hop (empty)": min(await async_times(lambda: anyio.to_thread.run_sync(_nothing))),
        "memory.remember": min(times(lambda: remember(memory, torrents, now))),
        "engine.plan": min(times(lambda: engine.plan(torrents, poller.config, now, memory))),
    }
    print("stages (best of each):")
    for name, ms in timings.items():
        print(f"  {name:27s} {ms:6.1f} ms")
    return reply


def _nothing() -> None:
    pass


def _convert(plan: Layout, rows: object) -> tuple[Torrent, ...]:
    """The conversion alone, as client.snapshot does it after decoding."""
    if not isinstance(rows, list):
        raise TypeError("expected a list of rows")
    return torrents_from_rows(plan, rows)


def profile_stages(poller: Poller, dialect: Dialect, reply: bytes) -> None:
    """cProfile of decode + conversion + remember + plan, the poll's CPU work."""
    plan = _layout_for(frozenset(poller.names))
    now = time.time()

    def work() -> None:
        torrents = _rows_to_torrents(plan, reply, dialect, dialect.multicall, poller.wire)
        memory = remember(poller.memory, torrents, now)
        engine.plan(torrents, poller.config, now, memory)

    profiler = cProfile.Profile()
    profiler.runcall(work)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(14)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    profile, freeze = "--profile" in sys.argv, "--gc-freeze" in sys.argv
    if "--gc-default" not in sys.argv:
        tune_collector()  # as the daemon runs
    attach = [a.partition("=")[2] for a in sys.argv if a.startswith("--socket=")]
    if attach:
        anyio.run(measure, attach[0], profile, freeze)
        return
    count = int(args[0]) if args else TORRENTS
    start = "--stopped" not in sys.argv
    versions = [a.partition("=")[2] for a in sys.argv if a.startswith("--rtorrent=")]
    version = versions[0] if versions else "0.9.8"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    state = "started" if start else "stopped"
    print(f"rtorrent {version}; open file limit {soft}/{hard}; loading {count} torrents {state}")
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-poll-"))
    try:
        began = time.perf_counter()
        torrents = make_torrents(work / "payload", count)
        with RtorrentProcess(work / "rtorrent", version=version, clean_exit=False) as process:
            load_all(process, torrents, start)
            print(f"made and loaded in {time.perf_counter() - began:.1f} s")
            anyio.run(measure, str(process.socket_path), profile, freeze)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
