"""Start-up cost: each command imports only what it needs (see rtorrentd/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import RtorrentProcess, TorrentFactory, random_bytes

PROBE = """
import contextlib, io, json, sys
from rtorrentd.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported_by(*args: str) -> tuple[int, set[str]]:
    """The exit code of `rtorrentd ARGS` and every module it imported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reply = json.loads(result.stdout.splitlines()[-1])  # after what the command printed
    return reply["code"], set(reply["modules"])


def test_version_imports_no_library_and_no_layer() -> None:
    code, modules = imported_by("version")
    assert 0 == code
    heavy = {"anyio", "asyncio", "httpx", "structlog"}
    layers = {m for m in modules if m.startswith("rtorrentd.") and m.count(".") >= 2}
    assert (set(), set()) == (heavy & modules, layers)


@pytest.mark.parametrize(
    "url",
    ["scgi:///nonexistent/rpc.socket", "scgi://127.0.0.1:1"],
)
def test_plan_over_scgi_imports_no_http_no_daemon_and_no_deletion(tmp_path: Path, url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[rtorrent]\nurl = "{url}"\ntimeout = "2s"\n')
    code, modules = imported_by("plan", "-c", str(config))
    assert 1 == code  # nothing listens there: the command got as far as connecting
    unwanted = {"httpx", "rtorrentd.rtorrent.http", "rtorrentd.service.daemon"}
    # Nor the machinery that acts (issue 15): `plan` stops at the plan.
    unwanted |= {"rtorrentd.service.poll", "rtorrentd.deletion.executor"}
    assert set() == unwanted & modules


@pytest.mark.parametrize("metrics", [False, True])
def test_run_imports_prometheus_client_only_with_metrics(tmp_path: Path, metrics: bool) -> None:
    config = tmp_path / "config.toml"
    text = '[rtorrent]\nurl = "scgi:///nonexistent/rpc.socket"\ntimeout = "2s"\n'
    text += f'[metrics]\ntextfile = "{tmp_path}/x.prom"\n' if metrics else ""
    config.write_text(text)
    code, modules = imported_by("run", "--once", "-c", str(config))
    assert 1 == code  # nothing listens there: the command got as far as connecting
    assert metrics == ("prometheus_client" in modules)


class Costly:
    """A result that counts how often it is formatted."""

    reprs = 0

    def __repr__(self) -> str:
        Costly.reprs += 1
        return "Costly()"


def test_a_command_does_not_format_its_result_on_the_way_out() -> None:
    # asyncio's runner formats the main task, result included, when it restores
    # the SIGINT handler: a 10,000-torrent snapshot's repr took tens of ms.
    from rtorrentd.cli import run_async

    async def work() -> Costly:
        return Costly()

    result = run_async(work)

    assert (Costly, 0) == (type(result), Costly.reprs)


@pytest.mark.parametrize("notify", [False, True])
def test_run_imports_apprise_only_with_notify(tmp_path: Path, notify: bool) -> None:
    config = tmp_path / "config.toml"
    text = '[rtorrent]\nurl = "scgi:///nonexistent/rpc.socket"\ntimeout = "2s"\n'
    # No event to send: the command ends at once, with nothing to deliver.
    text += '[notify]\nurls = ["json://127.0.0.1:9/hook"]\nevents = []\n' if notify else ""
    config.write_text(text)
    code, modules = imported_by("run", "--once", "-c", str(config))
    assert 1 == code  # nothing listens there: the command got as far as connecting
    assert notify == ("apprise" in modules)


CAPTURE = """
import contextlib, io, json, sys
from rtorrentd.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stderr(err):
    code = main(sys.argv[1:], out)
print(json.dumps({"code": code, "modules": sorted(sys.modules), "out": out.getvalue(),
                  "err": err.getvalue()}))
"""


def captured(*args: str) -> dict[str, Any]:
    """`rtorrentd ARGS` in a fresh interpreter: exit code, modules, stdout, stderr."""
    result = subprocess.run(
        [sys.executable, "-c", CAPTURE, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "" == result.stderr
    reply: dict[str, Any] = json.loads(result.stdout)
    return reply


@pytest.mark.integration
def test_a_plan_that_logs_nothing_imports_no_structlog(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    seeded = torrent_factory("seeded.bin", random_bytes(20_000, 1), dest_dir=rtorrent.download_dir)
    rtorrent.load(seeded)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n[safety]\n'
        f'allowed_roots = ["{rtorrent.download_dir}"]\nmax_delete_fraction = 1.0\n'
        '[[rule]]\nname = "all"\nwhen = "complete"\naction = "delete"\n'
    )

    reply = captured("plan", "-c", str(config), "--format", "json")

    steps = json.loads(reply["out"])
    assert (0, "", [seeded.info_hash]) == (reply["code"], reply["err"], [s["hash"] for s in steps])
    # structlog (a tenth of a plan's start-up) and the deleting machinery stay out.
    unwanted = {"structlog", "rtorrentd.deletion.trash", "rtorrentd.deletion.peers"}
    assert set() == unwanted & set(reply["modules"])


@pytest.mark.integration
def test_a_plan_that_warns_sets_logging_up_first_and_keeps_stdout_json(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n[safety]\n'
        f'allowed_roots = ["{tmp_path}"]\nmax_delete_fraction = 1.0\n'
        f'[[space]]\npath = "{tmp_path}/unmounted"\nmin_free = "1GiB"\ncandidates = "complete"\n'
        'action = "delete"\n'
    )

    reply = captured("plan", "-c", str(config), "--format", "json")

    assert (0, []) == (reply["code"], json.loads(reply["out"]))
    # Set up on the first event: one JSON line on stderr (not a terminal), at warning.
    (line,) = reply["err"].splitlines()
    event = json.loads(line)
    assert ("space.unmeasured", "warning") == (event["event"], event["level"])
    assert f"{tmp_path}/unmounted" == event["path"]
