"""`rtorrentd plan` against pyrosimple's `rtcontrol`: the same selection, whole processes.

    .venv/bin/python bench/rtcontrol.py [torrents] [--rtorrent=0.16] [--runs=N]
        [--rtcontrol=PATH] [--python=PATH] [--socket=PATH]

Loads tiny torrents stopped (bench/poll.py's loader), labels every third one
"old", then runs, alternating so that a busy machine slows both alike:
- `rtorrentd plan --format json` with one rule, `label == "old" and size > 512`;
- `rtcontrol -q -o hash custom_1=old size=+512`, the same selection.
Both must print the same set of hashes. Each is installed as a user would, with
pip into a venv of its own in the bench's temp dir: rtorrentd from this tree (not
editable: the development venv's editable finder costs every start-up), pyrosimple
from the package index (not a dependency of rtorrentd), configured for the
bench's rtorrent by `PYRO_CONF`. `--rtcontrol=PATH` and `--python=PATH` (an
interpreter that imports rtorrentd) use installed ones; `--socket=PATH` an
rtorrent running already, whose torrents it labels.
Besides the medians it prints the floors neither can go below: the interpreter's
start-up (`python -c pass`) and rtorrent's own answer to rtorrentd's snapshot
request (sent raw, the reply read to EOF). Goal (issue 15): plan >= 3 x faster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from harness import RtorrentProcess  # noqa: E402
from harness.rtorrent import scgi_call  # noqa: E402
from poll import load_all, make_torrents  # noqa: E402
from scale import read_all  # noqa: E402

from rtorrentd.config.load import parse_config  # noqa: E402
from rtorrentd.engine import plan as engine  # noqa: E402
from rtorrentd.protocol import scgi  # noqa: E402
from rtorrentd.rtorrent.client import _layout_for, _rows_to_torrents  # noqa: E402
from rtorrentd.rtorrent.dialect import parse_version  # noqa: E402
from rtorrentd.rtorrent.wire import JSON_RPC, XML_RPC  # noqa: E402

TORRENTS = 10_000
RUNS = 7
GOAL = 3.0
RULE = 'label == "old" and size > 512'
RTCONTROL_FILTER = ("custom_1=old", "size=+512")


def option(name: str, default: str) -> str:
    values = [a.partition("=")[2] for a in sys.argv if a.startswith(f"--{name}=")]
    return values[0] if values else default


def install(work: Path, name: str, package: str) -> Path:
    """`package` installed with pip into the venv `work/name`; its bin directory."""
    venv = work / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", package]
    subprocess.run(pip, check=True, stderr=subprocess.DEVNULL)
    return venv / "bin"


def config_text(socket: Path, root: Path) -> str:
    return (
        f'[rtorrent]\nurl = "scgi://{socket}"\n'
        f'[safety]\nallowed_roots = ["{root}"]\nmax_deletes_per_poll = 1000000\n'
        "max_delete_fraction = 1.0\n"
        f'[[rule]]\nname = "old"\nwhen = \'{RULE}\'\naction = "delete"\n'
    )


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=cwd)
    return time.perf_counter() - started, done.stdout


def rtorrent_answer(path: Path, config_file: Path) -> tuple[float, float]:
    """Median ms rtorrent takes to answer rtorrentd's snapshot request (sent raw,
    read to EOF, over the wire `plan` uses with this version), and median ms the
    client takes to decode that answer into Torrents, in this process."""
    config = parse_config(config_file.read_text(), str(config_file))
    layout = _layout_for(frozenset(engine.fetch_names(config)))
    dialect = parse_version(scgi_call(str(path), "system.client_version"))
    wire = JSON_RPC if dialect.snapshot_over_json else XML_RPC
    params = ["", "main", *layout.commands]
    request = scgi.encode_request(
        wire.encode(dialect.multicall, params), content_type=wire.content_type
    )
    answers, decodes = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        raw = raw_reply(str(path), request)
        answers.append((time.perf_counter() - started) * 1000)
        body = scgi.parse_reply(raw)
        started = time.perf_counter()
        torrents = _rows_to_torrents(layout, body, dialect, dialect.multicall, wire)
        decodes.append((time.perf_counter() - started) * 1000)
        assert torrents, "the snapshot decoded to nothing"
    return statistics.median(answers), statistics.median(decodes)


def raw_reply(path: str, request: bytes) -> bytes:
    """rtorrent's whole SCGI reply to `request`, read to EOF."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(request)
        return read_all(sock)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else TORRENTS
    version = option("rtorrent", "0.9.8")
    runs = int(option("runs", str(RUNS)))
    work = Path(tempfile.mkdtemp(prefix="rtorrentd-rtcontrol-"))
    try:
        given = option("rtcontrol", "")
        rtcontrol = Path(given) if given else install(work, "pyro", "pyrosimple") / "rtcontrol"
        given = option("python", "")
        python = Path(given) if given else install(work, "rtorrentd", str(ROOT)) / "python"
        running = option("socket", "")
        with contextlib.ExitStack() as stack:
            if running:
                socket = Path(running)
                hashes = [
                    row[0] for row in scgi_call(str(socket), "d.multicall2", "", "main", "d.hash=")
                ]
            else:
                torrents = make_torrents(work / "payload", count)
                process = stack.enter_context(
                    RtorrentProcess(work / "rtorrent", version=version, clean_exit=False)
                )
                load_all(process, torrents, start=False)
                socket, hashes = process.socket_path, [t.info_hash for t in torrents]
            calls = [{"methodName": "d.custom1.set", "params": [h, "old"]} for h in hashes[::3]]
            scgi_call(str(socket), "system.multicall", calls, timeout=60)
            config = work / "rtorrentd.toml"
            config.write_text(config_text(socket, work / "payload"))
            pyro_conf = work / "pyrosimple.toml"
            pyro_conf.write_text(f'scgi_url = "scgi+unix://{socket}"\n')
            env = {**os.environ, "PYRO_CONF": str(pyro_conf)}
            commands = {
                "rtorrentd plan": [
                    str(python),
                    "-m",
                    "rtorrentd",
                    "plan",
                    "-c",
                    str(config),
                    "--format",
                    "json",
                ],
                "rtcontrol": [str(rtcontrol), "-q", "-o", "hash", *RTCONTROL_FILTER],
                "python -c pass": [str(python), "-c", "pass"],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            outputs: dict[str, str] = {}
            for _ in range(runs):
                for name, command in commands.items():
                    took, outputs[name] = run(command, env, work)
                    times[name].append(took * 1000)
            ours = {step["hash"] for step in json.loads(outputs["rtorrentd plan"])}
            theirs = set(outputs["rtcontrol"].split())
            assert ours == theirs, f"{len(ours)} vs {len(theirs)} hashes"
            answer, decode = rtorrent_answer(socket, config)
            running_version = scgi_call(str(socket), "system.client_version")
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"rtorrent {running_version}, {len(hashes)} torrents, {len(ours)} selected by both")
        for name, median in medians.items():
            print(f"{name:16s} median {median:7.0f} ms over {runs} runs")
        print(f"rtorrent's own answer to rtorrentd's snapshot: {answer:.0f} ms (raw)")
        print(f"decoding that answer into Torrents: {decode:.0f} ms (in process)")
        ratio = medians["rtcontrol"] / medians["rtorrentd plan"]
        print(f"rtcontrol / rtorrentd plan: {ratio:.2f} x (goal >= {GOAL} x)")
        # What no plan can go below: starting Python, rtorrent's answer, decoding it.
        floor = medians["python -c pass"] + answer + decode
        best = medians["rtcontrol"] / floor
        print(f"floor (interpreter + answer + decode): {floor:.0f} ms; at best {best:.2f} x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
