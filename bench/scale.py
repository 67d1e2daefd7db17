"""One poll at 10,000, 50,000 and 100,000 torrents against a real rtorrent (issue 15.3, 15.4).

    .venv/bin/python bench/scale.py [--sizes=10000,50000,100000] [--rtorrent=0.9.8,0.16]
                                    [--runs=3] [--steady=50000] [--polls=100] [--gc-default]
                                    [--python=/path/to/venv/bin/python]

Loading: no RPC per torrent. The session directory is written beforehand, each
torrent as rtorrent itself saves it (`<HASH>.torrent`, `.rtorrent`,
`.libtorrent_resume`): a tiny single-file torrent, stopped, complete by its
resume data (no payload, no hash check), with a label, up/down totals and
timestamps that vary. rtorrent is started on it and the time until it answers
is printed (rtorrent loads the whole session before it serves its socket).

Per rtorrent, size and protocol (0.9.8: XML-RPC, xmlrpc-c's layout; 0.16:
XML-RPC in xmlrpc-c's layout, in tinyxml2's, and JSON-RPC), a driver process
(`--driver`, the daemon's code and nothing else in it) alternates RUNS times:
- rtorrent's raw answer: the very snapshot request the poll sends, over a raw
  socket, read to EOF, not decoded; and the time to its first byte, when
  rtorrent has built the whole reply (it holds its lock until then);
- one whole poll (`service.poll.poll_once`, dry-run, three rules as in
  bench/poll.py): wall time, CPU time of the process (`time.process_time`,
  threads included), every rtorrent call timed at the transport: the longest
  and their sum (how long rtorrent served us: an upper bound on its lock);
and prints the peak RSS (VmHWM) of the process, and how long the cyclic garbage
collector ran inside the poll (`gc.callbacks`), with the thresholds the daemon
sets (`service.daemon.tune_collector`; Python's own with `--gc-default`).
Medians of RUNS are shown. On a machine shared with other work the poll's wall
time counts the CPU it waited for: `(raw + CPU) / raw` is the ratio a poll would
have with a core to itself.
Then `rtorrentd run --once --dry-run` as a whole process: wall, CPU and
ru_maxrss from wait4 (imports and start-up included), run by `--python`: give
the interpreter of a venv where rtorrentd is pip-installed with its runtime
dependencies only, as a user's is (this repository's .venv holds the dev tools
too, and its peak is some 4 MiB higher).

tinyxml2: no rtorrent build at hand writes it (Debian's 0.16 is built with
xmlrpc-c), so a proxy process (`--proxy`) stands in front of 0.16: it forwards
each request to rtorrent, reads the whole reply and sends it on in tinyxml2's
layout (converted once per distinct reply, then cached, so the conversion is not
timed). Both the raw answer and the poll go through it: its store-and-forward
copy is in both columns.

Steady state (`--steady`): the driver polls `--polls` times in a row as the
daemon loop does (memory carried over) and prints its RSS after poll 1, 10, 50
and 100.
Goals: poll <= 1.5 x rtorrent's raw answer; peak RSS <= 120 MiB at 100,000.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gcclock import GcClock  # noqa: E402
from harness import RtorrentProcess, bencode, poll_until  # noqa: E402
from harness.bencode import Bencodable  # noqa: E402

SIZES = (10_000, 50_000, 100_000)
LOADED = 10_000
VERSIONS = ("0.9.8", "0.16")
RUNS = 3
GOAL = 1.5
RSS_GOAL_MIB = 120
STEADY_AT = (1, 10, 50, 100)
STEADY_ON = "0.9.8"  # the steady polls on one rtorrent: XML-RPC, the larger replies
EPOCH = 1_700_000_000
TRACKER = "http://127.0.0.1:1/announce"
LABELS = ("", "", "tv", "movies", "linux%20isos")
RULES = (
    ("ratio", "complete and ratio >= 2.0"),
    ("stale", "complete and ratio >= 0.5 and idle >= 14d and leechers == 0"),
    ("old", "complete and seeding_time >= 60d"),
)


# --- the session directory ------------------------------------------------------------


def write_session(session: Path, directory: Path, count: int, seed: int = 15) -> None:
    """`count` tiny torrents as rtorrent saves them: stopped, complete by their resume
    data (bitfield all done, the file's mtime given), so that rtorrent loads them
    without a hash check and without a payload on disk."""
    session.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    resume = bencode(
        {
            "bitfield": 1,
            "files": [{"completed": 1, "mtime": EPOCH, "priority": 1}],
            "peers": [],
            "trackers": {TRACKER: {"enabled": 1}},
        }
    )
    for i in range(count):
        size = rng.randint(1, 1024)
        info: dict[str, Bencodable] = {
            "length": size,
            "name": f"tiny-{i:06d}.bin",
            "piece length": 16384,
            "pieces": hashlib.sha1(b"%d" % i).digest(),
        }
        stem = session / f"{hashlib.sha1(bencode(info)).hexdigest().upper()}.torrent"
        stem.write_bytes(bencode({"announce": TRACKER, "creation date": EPOCH, "info": info}))
        Path(f"{stem}.libtorrent_resume").write_bytes(resume)
        Path(f"{stem}.rtorrent").write_bytes(bencode(_rtorrent_state(rng, i, size, directory)))


def _rtorrent_state(
    rng: random.Random, i: int, size: int, directory: Path
) -> dict[str, Bencodable]:
    finished = EPOCH + rng.randint(0, 90 * 86_400)
    state: dict[str, Bencodable] = {
        "chunks_done": 1,
        "chunks_wanted": 0,
        "complete": 1,
        "directory": str(directory),
        "hashing": 0,
        "ignore_commands": 0,
        "key": i,
        "loaded_file": "",
        "priority": 2,
        "state": 0,
        "state_changed": finished,
        "state_counter": 0,
        "throttle_name": "",
        "tied_to_file": "",
        "timestamp.finished": finished,
        "timestamp.started": EPOCH,
        "total_downloaded": size,
        "total_uploaded": rng.randint(0, 4 * size),
        "views": [],
    }
    state["custom1"] = rng.choice(LABELS)
    for key in ("custom2", "custom3", "custom4", "custom5"):
        state[key] = ""
    for key in ("choke_heuristics.down.leech", "choke_heuristics.down.seed"):
        state[key] = ""
    for key in ("choke_heuristics.up.leech", "choke_heuristics.up.seed"):
        state[key] = ""
    state["connection_leech"] = state["connection_seed"] = ""
    return state


def config_text(url: str) -> str:
    """The daemon's configuration: the three rules of bench/poll.py, on `url`."""
    rules = "".join(
        f'[[rule]]\nname = "{name}"\nwhen = "{when}"\naction = "delete"\n' for name, when in RULES
    )
    safety = f'[safety]\nallowed_roots = ["{tempfile.gettempdir()}"]\n'
    return f'[rtorrent]\nurl = "{url}"\n{safety}{rules}'


# --- the proxy: tinyxml2's layout, and snapshots scaled up ---------------------------

_HASH_XML = re.compile(rb"<string>([0-9A-F]{40})</string>")
_HASH_JSON = re.compile(rb'"([0-9A-F]{40})"')


def compact(body: bytes) -> bytes:
    """xmlrpc-c's layout to tinyxml2's (as bench/decode.py makes it)."""
    body = body.replace(b'<?xml version="1.0" encoding="UTF-8"?>', b'<?xml version="1.0"?>')
    return body.replace(b">\r\n<", b"><").replace(b"<data></data>", b"<data/>").rstrip()


def scale(body: bytes, factor: int) -> bytes:
    """A snapshot reply with its rows `factor` times, each copy's info-hashes made
    distinct (copy j starts them with j in hex), in the reply's own layout."""
    if factor == 1:
        return body
    if body.startswith(b"{"):  # JSON-RPC: {"id":1,"jsonrpc":"2.0","result":[rows]}
        start = body.index(b'"result":[') + len(b'"result":[')
        end = body.rstrip().rindex(b"]}")
        rows, pattern, joiner = body[start:end], _HASH_JSON, b","
    else:
        start = body.index(b"<array><data>") + len(b"<array><data>")
        start += len(b"\r\n") if body.startswith(b"\r\n", start) else 0
        end = body.rindex(b"</data></array>")
        rows, pattern, joiner = body[start:end], _HASH_XML, b""
    copies = [rows] + [_renamed(pattern, rows, b"%02X" % j) for j in range(1, factor)]
    return body[:start] + joiner.join(copies) + body[end:]


def _renamed(pattern: re.Pattern[bytes], rows: bytes, prefix: bytes) -> bytes:
    """`rows` with every info-hash's first two hex digits replaced by `prefix`."""
    return pattern.sub(lambda m: m[0].replace(m[1], prefix + m[1][2:]), rows)


def read_all(sock: socket.socket) -> bytes:
    """Everything until EOF."""
    chunks = []
    while chunk := sock.recv(1 << 18):
        chunks.append(chunk)
    return b"".join(chunks)


def read_request(sock: socket.socket) -> bytes:
    """One whole SCGI request (netstring header, then CONTENT_LENGTH bytes)."""
    data = b""
    while b":" not in data:
        data += sock.recv(4096)
    length, _, rest = data.partition(b":")
    need = int(length) + 1  # the header and its comma
    while len(rest) < need:
        rest += sock.recv(1 << 16)
    headers = rest[: int(length)].split(b"\x00")
    body_length = int(headers[headers.index(b"CONTENT_LENGTH") + 1])
    while len(rest) < need + body_length:
        rest += sock.recv(1 << 18)
    return data[: len(length) + 1] + rest


def rewrite(reply: bytes, snapshot: bool, factor: int, tinyxml2: bool) -> bytes:
    """rtorrent's SCGI reply as the proxy sends it on."""
    head, _, body = reply.partition(b"\r\n\r\n")
    if snapshot:
        body = scale(body, factor)
    if tinyxml2 and body.startswith(b"<?xml"):
        body = compact(body)
    lines = [
        b"Content-Length: %d" % len(body) if line.startswith(b"Content-Length") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def proxy(listen: str, upstream: str, factor: int, tinyxml2: bool) -> None:
    """Serve `listen`, forwarding each request to `upstream`: XML replies in
    tinyxml2's layout if asked, a snapshot's rows `factor` times. A rewritten reply
    is kept for as long as rtorrent's answer to that request stays the same, so
    that the rewriting is not timed."""
    cache: dict[bytes, tuple[bytes, bytes]] = {}
    lock = threading.Lock()

    def serve(client: socket.socket) -> None:
        with client:
            request = read_request(client)
            with socket.socket(socket.AF_UNIX) as up:
                up.connect(upstream)
                up.sendall(request)
                reply = read_all(up)
            with lock:
                raw, converted = cache.get(request, (b"", b""))
            if raw != reply:
                snapshot = b"d.multicall" in request[:2000]
                converted = rewrite(reply, snapshot, factor, tinyxml2)
                if snapshot:
                    with lock:
                        cache.clear()  # one snapshot's worth at a time
                        cache[request] = (reply, converted)
            client.sendall(converted)

    with socket.socket(socket.AF_UNIX) as server:
        server.bind(listen)
        server.listen(16)
        print("ready", flush=True)
        while True:
            client, _ = server.accept()
            threading.Thread(target=serve, args=(client,), daemon=True).start()


# --- the driver: the daemon's poll in a process of its own ----------------------------


def status_kib(key: str) -> int:
    """A line of /proc/self/status, in KiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def raw_exchange(path: str, request: bytes) -> tuple[float, float, int]:
    """Send the request, read the reply to EOF: ms to the first byte, ms to EOF, bytes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        started = time.perf_counter()
        sock.sendall(request)
        size = len(sock.recv(1 << 18))
        first = time.perf_counter()
        while chunk := sock.recv(1 << 18):
            size += len(chunk)
    done = time.perf_counter()
    return (first - started) * 1000, (done - started) * 1000, size


def drive(socket_path: str, wire: str, runs: int, polls: int, gc_default: bool) -> None:  # noqa: PLR0915
    """Runs in the driver process; prints one JSON object of figures."""
    import anyio
    import structlog

    from rtorrentd.config.load import parse_config
    from rtorrentd.engine.memory import Memory
    from rtorrentd.protocol import scgi
    from rtorrentd.protocol.pieces import Pieces
    from rtorrentd.rtorrent.client import RtorrentClient
    from rtorrentd.rtorrent.transport import Transport, open_transport
    from rtorrentd.rtorrent.wire import JsonChoice
    from rtorrentd.service.daemon import tune_collector
    from rtorrentd.service.poll import poll_once

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    if not gc_default:
        tune_collector()  # as the daemon runs

    @dataclass
    class Timed:
        """A transport that keeps every request body's first bytes and its time."""

        inner: Transport
        calls: list[tuple[bytes, float]] = field(default_factory=list)
        snapshot: tuple[bytes, str | None] | None = None

        async def request(self, body: bytes, *, content_type: str | None = None) -> bytes:
            started = time.perf_counter()
            try:
                return await self.inner.request(body, content_type=content_type)
            finally:
                self.calls.append((body[:300], (time.perf_counter() - started) * 1000))
                if b"d.multicall" in body[:300]:
                    self.snapshot = (body, content_type)

        async def request_pieces(self, body: bytes, *, content_type: str | None = None) -> Pieces:
            started = time.perf_counter()
            try:
                return await self.inner.request_pieces(body, content_type=content_type)
            finally:
                self.calls.append((body[:300], (time.perf_counter() - started) * 1000))
                if b"d.multicall" in body[:300]:
                    self.snapshot = (body, content_type)

        @property
        def url(self) -> str:
            return self.inner.url

        async def aclose(self) -> None:
            await self.inner.aclose()

    url = f"scgi://{socket_path}"
    config = parse_config(config_text(url), "bench")
    timed = Timed(open_transport(url))
    client = RtorrentClient(timed)
    if wire == "xml":
        client._json = JsonChoice(off="bench/scale.py measures XML-RPC")

    async def run() -> dict[str, object]:
        memory = Memory.empty()
        result = await poll_once(client, config, memory, dry_run=True, now=time.time())
        memory = result.memory
        if timed.snapshot is None:
            raise SystemExit("the poll sent no d.multicall")
        body, content_type = timed.snapshot
        is_json = content_type is not None and "json" in content_type
        if is_json != (wire == "json"):
            raise SystemExit(f"the snapshot went over {'JSON' if is_json else 'XML'}-RPC")
        request = scgi.encode_request(body, content_type=content_type)
        figures: dict[str, object] = {"torrents": result.torrents, "steps": len(result.plan.steps)}
        raws, firsts, walls, cpus, longest, total, counts = [], [], [], [], [], [], []
        collecting: list[float] = []
        collector = GcClock()
        size = 0
        for _ in range(runs):
            first, raw, size = raw_exchange(socket_path, request)
            firsts.append(first)
            raws.append(raw)
            timed.calls.clear()
            collector.total = 0.0
            cpu, wall = time.process_time(), time.perf_counter()
            result = await poll_once(client, config, memory, dry_run=True, now=time.time())
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            collecting.append(collector.total)
            memory = result.memory
            longest.append(max(ms for _, ms in timed.calls))
            total.append(sum(ms for _, ms in timed.calls))
            counts.append(len(timed.calls))
        figures.update(
            raw=raws,
            first_byte=firsts,
            poll=walls,
            cpu=cpus,
            gc=collecting,
            longest_call=longest,
            calls_total=total,
            calls=counts,
            reply_bytes=size,
            hwm_kib=status_kib("VmHWM"),
        )
        steady = {}
        for n in range(1, polls + 1):
            result = await poll_once(client, config, memory, dry_run=True, now=time.time())
            memory = result.memory
            if n in STEADY_AT:
                steady[str(n)] = status_kib("VmRSS")
        if steady:
            figures.update(steady=steady, hwm_kib=status_kib("VmHWM"))
        return figures

    print(json.dumps(anyio.run(run)))


# --- the orchestration ----------------------------------------------------------------


class Loaded(RtorrentProcess):
    """An rtorrent started on a written session: ready once every torrent is listed
    (0.16 answers while it still loads the session; 0.9.8 only after)."""

    def __init__(self, root: Path, count: int, **options: object) -> None:
        super().__init__(root, **options)  # type: ignore[arg-type]
        self.count = count

    def _check_ports(self) -> None:
        def listed() -> bool:
            try:
                return bool(self.call("view.size", "", "main", timeout=600) >= self.count)
            except OSError:
                return False

        poll_until(listed, timeout=self.start_timeout, what="the session loaded", interval=1)
        super()._check_ports()


@dataclass
class Bench:
    """Where everything goes, and the options."""

    work: Path
    runs: int
    polls: int
    steady: int
    gc_default: bool = False
    python: str = sys.executable  # what runs `run --once` as a whole process
    rows: list[str] = field(default_factory=list)
    raw: dict[tuple[str, str], float] = field(default_factory=dict)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.rows.append(line)

    def driver(self, socket_path: str, wire: str, polls: int = 0) -> dict[str, object]:
        command = [sys.executable, __file__, "--driver", f"--socket={socket_path}"]
        command += [f"--wire={wire}", f"--runs={self.runs}", f"--polls={polls}"]
        command += ["--gc-default"] if self.gc_default else []
        out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise SystemExit(f"the driver failed: {out.stderr[-3000:]}")
        figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
        return figures

    def whole_process(self, socket_path: str) -> tuple[float, float, int]:
        """`rtorrentd run --once --dry-run`: wall ms, CPU ms, ru_maxrss KiB."""
        config = self.work / "config.toml"
        config.write_text(config_text(f"scgi://{socket_path}"))
        command = [self.python, "-m", "rtorrentd", "run", "--once", "--dry-run"]
        command += ["-c", str(config), "--log-format", "json"]
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = (time.perf_counter() - started) * 1000
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"rtorrentd run --once exited {child.returncode}")
        return wall, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss

    @contextmanager
    def proxied(self, upstream: str, factor: int, tinyxml2: bool) -> Iterator[str]:
        """The socket to talk to: rtorrent's own, or a proxy's in front of it."""
        if factor == 1 and not tinyxml2:
            yield upstream
            return
        listen = str(self.work / "proxy.socket")
        command = [sys.executable, __file__, f"--proxy={listen}", f"--to={upstream}"]
        command += [f"--factor={factor}"] + (["--tinyxml2"] if tinyxml2 else [])
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            process.stdout.readline()  # "ready": it listens
            yield listen
        finally:
            process.kill()
            process.wait()
            Path(listen).unlink(missing_ok=True)

    def measure(
        self, version: str, loaded: int, sizes: Sequence[int], process: RtorrentProcess
    ) -> None:
        upstream = str(process.socket_path)
        wires = [("xml", "xmlrpc-c", False)]
        if version != "0.9.8":
            wires += [("xml", "tinyxml2", True), ("json", "JSON-RPC", False)]
        for count in sizes:
            factor = count // loaded
            for wire, what, tinyxml2 in wires:
                with self.proxied(upstream, factor, tinyxml2) as path:
                    self.report(version, count, what, factor, self.driver(path, wire))
            with self.proxied(upstream, factor, False) as path:
                wall, cpu, maxrss = self.whole_process(path)
            self.say(
                f"{version:5s} {count:>7,} run --once --dry-run, whole process: wall {wall:.0f} ms,"
                f" CPU {cpu:.0f} ms, max RSS {maxrss / 1024:.0f} MiB"
            )
            if count == self.steady and version == STEADY_ON:
                wire = "json" if version != "0.9.8" else "xml"
                with self.proxied(upstream, factor, False) as path:
                    figures = self.driver(path, wire, self.polls)
                steady = figures["steady"]
                assert isinstance(steady, dict)
                shown = ", ".join(f"poll {n}: {kib / 1024:.1f}" for n, kib in steady.items())
                self.say(f"{version:5s} {count:>7,} {wire} steady RSS MiB: {shown}")

    def report(
        self, version: str, count: int, what: str, factor: int, figures: dict[str, object]
    ) -> None:
        def median(key: str) -> float:
            values = figures[key]
            assert isinstance(values, list)
            return float(statistics.median(values))

        paired = statistics.median(
            p / r
            for p, r in zip(figures["poll"], figures["raw"], strict=True)  # type: ignore[call-overload]
        )
        poll, raw = median("poll"), median("raw")
        hwm = int(figures["hwm_kib"]) / 1024  # type: ignore[call-overload]
        verdict = "ok" if poll <= GOAL * raw else "OVER"
        rss = "ok" if hwm <= RSS_GOAL_MIB else "OVER"
        scaled = f"(x{factor})" if factor > 1 else ""
        megabytes = int(figures["reply_bytes"]) / 1e6  # type: ignore[call-overload]
        line = (
            f"{version:5s} {count:>7,} {what:8s} {scaled:5s} reply {megabytes:5.1f} MB:"
            f" poll {poll:6.0f} ms vs raw {raw:6.0f} ms = {poll / raw:.2f}x"
            f" (paired {paired:.2f}x, {verdict});"
            f" CPU {median('cpu'):6.0f} ms, of which GC {median('gc'):4.0f} ms"
            f" ((raw + CPU) / raw {(raw + median('cpu')) / raw:.2f}x);"
            f" peak RSS {hwm:5.1f} MiB ({rss});"
            f" rtorrent: first byte {median('first_byte'):5.0f} ms,"
            f" longest call {median('longest_call'):5.0f} ms,"
            f" {median('calls'):.0f} calls {median('calls_total'):5.0f} ms in all"
        )
        if factor == 1:
            self.raw[version, what] = raw
        elif (version, what) in self.raw:
            # rtorrent builds the reply row by row: its answer at `count` torrents is
            # estimated as `factor` times the one measured; ours is measured.
            estimate = self.raw[version, what] * factor
            ours = poll - raw
            line += (
                f"\n{'':14s} {what:8s} estimated against rtorrent itself: raw {estimate:6.0f} ms"
                f" (x{factor} the measured), poll {estimate + ours:6.0f} ms"
                f" = {(estimate + ours) / estimate:.2f}x"
            )
        self.say(line)


def main() -> None:
    options = dict(a[2:].partition("=")[::2] for a in sys.argv[1:] if a.startswith("--"))
    if "proxy" in options:
        proxy(options["proxy"], options["to"], int(options["factor"]), "tinyxml2" in options)
        return
    runs = int(options.get("runs", RUNS))
    if "driver" in options:
        polls = int(options.get("polls", 0))
        drive(options["socket"], options["wire"], runs, polls, "gc-default" in options)
        return
    loaded = int(options.get("loaded", LOADED))
    sizes = [int(s) for s in options.get("sizes", ",".join(map(str, SIZES))).split(",")]
    versions = options.get("rtorrent", ",".join(VERSIONS)).split(",")
    print(f"rtorrent {', '.join(versions)}: {loaded:,} loaded; sizes {sizes}; {runs} runs")
    collector = "Python's" if "gc-default" in options else "the daemon's (tune_collector)"
    print(f"the driver's cyclic collector thresholds: {collector}")
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-scale-"))
    polls, steady = int(options.get("polls", 100)), int(options.get("steady", 50_000))
    python = options.get("python", sys.executable)
    bench = Bench(work, runs, polls, steady, "gc-default" in options, python)
    try:
        session = work / "session"
        began = time.perf_counter()
        write_session(session, work / "payload", loaded)
        print(f"{loaded:,} torrents written in {time.perf_counter() - began:.0f} s", flush=True)
        for version in versions:
            root = work / f"rtorrent-{version}"
            shutil.copytree(session, root / "session")
            with Loaded(root, loaded, version=version, start_timeout=3600, clean_exit=False) as rt:
                took = f"rtorrent answered after {rt.start_seconds:.0f} s"
                bench.say(f"{version:5s} {loaded:>7,} loaded: {took}")
                bench.measure(version, loaded, sizes, rt)
            shutil.rmtree(root, ignore_errors=True)
        print("\nsummary:")
        print("\n".join(bench.rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
