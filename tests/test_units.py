"""The systemd units are valid and hardened: `systemd-analyze verify` and `security`.

Needs `systemd-analyze`, from Debian's `systemd` package (no running systemd).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS_DIR = Path(__file__).resolve().parent.parent / "systemd"
# File name in the tree -> the name to check it under (a template needs an instance).
UNITS = {"rtorrentd.service": "rtorrentd.service", "rtorrentd@.service": "rtorrentd@test.service"}
MAX_EXPOSURE = 2.0
# Paths that `verify` wants to be executable on the machine running the tests.
COMMANDS = ("/usr/local/bin/rtorrentd", "/bin/kill")
# Where the single unit and the template may differ; every other line must match.
PER_INSTANCE = {
    "Description",
    "After",
    "ExecStart",
    "SyslogIdentifier",
    "ReadWritePaths",
    "StateDirectory",
}


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze not found: apt-get install systemd (no need to boot it)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def unit_for_verify(name: str, tmp_path: Path) -> Path:
    """A copy of unit `name` whose commands point at a stand-in executable."""
    stand_in = tmp_path / "stand-in"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    text = (UNITS_DIR / name).read_text()
    for command in COMMANDS:
        assert command in text
        text = text.replace(command, str(stand_in))
    copy = tmp_path / UNITS[name]
    copy.write_text(text)
    return copy


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies_cleanly(name: str, tmp_path: Path) -> None:
    result = run("verify", str(unit_for_verify(name, tmp_path)))
    # verify exits 0 on unknown keys and bad values, only warning: any output fails.
    assert (0, "", "") == (result.returncode, result.stdout, result.stderr)


@pytest.mark.parametrize("name", UNITS)
def test_unit_exposure(name: str, tmp_path: Path) -> None:
    copy = tmp_path / UNITS[name]
    shutil.copy(UNITS_DIR / name, copy)
    threshold = str(round(MAX_EXPOSURE * 10))  # the scale of --threshold is 0..100
    result = run("security", "--offline=yes", f"--threshold={threshold}", str(copy))
    assert 0 == result.returncode, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE


def directives(name: str) -> list[tuple[str, str]]:
    """(key, value) of every directive in unit `name`, in order, comments left out."""
    lines = (UNITS_DIR / name).read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith(("#", "["))]
    return [(key, value) for key, value in pairs]


def test_template_has_the_same_hardening() -> None:
    single, template = directives("rtorrentd.service"), directives("rtorrentd@.service")
    assert [k for k, _ in single] == [k for k, _ in template]
    assert [p for p in single if p[0] not in PER_INSTANCE] == [
        p for p in template if p[0] not in PER_INSTANCE
    ]
    assert ("ExecStart", "/usr/local/bin/rtorrentd run -c /etc/rtorrentd/%i.toml") in template
    # Each instance keeps its own write-ahead records.
    assert ("StateDirectory", "rtorrentd") in single
    assert ("StateDirectory", "rtorrentd/%i") in template
