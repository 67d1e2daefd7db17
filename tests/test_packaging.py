"""What `pip install .` really installs: every subpackage, and a working command.

An editable install hides a missing subpackage (the source tree is on the path),
so this builds the wheel as a user's `pip install .` would, unpacks it alone into
a directory that comes first on the path, and runs the command from there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RtorrentProcess, TorrentFactory, random_bytes

SOURCE = Path(__file__).resolve().parent.parent
LEFTOVERS = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel of this tree, unpacked into a directory of its own."""
    out = tmp_path_factory.mktemp("wheel")
    # A copy without build/ and caches: setuptools reuses a stale build/lib in the
    # source tree, which would ship modules deleted since.
    tree = out / "tree"
    shutil.copytree(SOURCE, tree, ignore=shutil.ignore_patterns(*LEFTOVERS))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(tree)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("rtorrentd-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    yield site


def run_installed(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I would drop the venv's dependencies; PYTHONPATH puts the wheel's copy first,
    # ahead of the editable install's finder, and `-c` proves which one ran.
    code = (
        "import sys, rtorrentd, rtorrentd.cli; "
        f"assert rtorrentd.__file__.startswith({str(site)!r}), rtorrentd.__file__; "
        "sys.argv[0] = 'rtorrentd'; sys.exit(rtorrentd.cli.main())"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=site,
    )


def test_the_wheel_holds_every_module(installed: Path) -> None:
    source = {p.relative_to(SOURCE).as_posix() for p in (SOURCE / "rtorrentd").rglob("*.py")}
    shipped = {p.relative_to(installed).as_posix() for p in (installed / "rtorrentd").rglob("*.py")}
    assert source == shipped
    assert (installed / "rtorrentd" / "py.typed").is_file()


def test_the_installed_command_runs_version(installed: Path) -> None:
    result = run_installed(installed, "version")
    assert (0, "rtorrentd 0.1.0\n", "") == (result.returncode, result.stdout, result.stderr)


@pytest.mark.integration
def test_the_installed_command_plans_against_real_rtorrent(
    installed: Path, rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    seeded = torrent_factory("seeded.bin", random_bytes(20_000, 7), dest_dir=rtorrent.download_dir)
    rtorrent.load(seeded, complete=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[rtorrent]\nurl = "{rtorrent.scgi_url}"\n\n'
        '[[rule]]\nname = "done"\nwhen = "complete"\naction = "stop"\n'
    )
    result = run_installed(installed, "plan", "-c", str(config), "--format", "json")
    assert (0, "") == (result.returncode, result.stderr)
    steps = [(s["hash"], s["action"], s["rule"]) for s in json.loads(result.stdout)]
    assert [(seeded.info_hash, "stop", "done")] == steps
