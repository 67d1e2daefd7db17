"""The `rtorrentd` command as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from flow import rtorrentd
from harness import RtorrentProcess, TorrentFactory, make_swarm, random_bytes

RULES = """
[[rule]]
name = "keep labelled"
when = 'label == "keep"'
action = "keep"

[[rule]]
name = "seeded enough"
when = "complete and ratio >= 1.0"
action = "delete"

[[rule]]
name = "not downloading"
when = "not complete"
action = "stop"

[[rule]]
name = "big and idle"
when = "complete and size >= 300KB"
action = "remove"
"""


def write_config(tmp_path: Path, url: str, roots: list[Path], rules: str = RULES) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[rtorrent]\nurl = "{url}"\ntimeout = "10s"\n\n[safety]\n'
        f"allowed_roots = {json.dumps([str(r) for r in roots])}\n"
        f"max_delete_fraction = 1.0\n{rules}"
    )
    return config


def test_version() -> None:
    result = rtorrentd("version")
    assert (0, "rtorrentd 0.1.0\n") == (result.returncode, result.stdout)


def test_check_accepts_a_valid_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, "scgi:///run/rtorrent/rpc.socket", [tmp_path])
    result = rtorrentd("check", "-c", str(config))
    expected = (
        f"{config}: valid; 4 rules (1 delete), 0 space policies, "
        "rtorrent at scgi:///run/rtorrent/rpc.socket\n"
    )
    assert (0, expected, "") == (result.returncode, result.stdout, result.stderr)


def test_check_counts_in_words_a_person_would_write(tmp_path: Path) -> None:
    one = '[[rule]]\nname = "done"\nwhen = "complete"\naction = "stop"\n'
    config = write_config(tmp_path, "scgi:///run/rtorrent/rpc.socket", [tmp_path], one)
    result = rtorrentd("check", "-c", str(config))
    assert (0, "") == (result.returncode, result.stderr)
    assert "valid; 1 rule (0 delete), 0 space policies," in result.stdout


def test_run_with_an_invalid_config_logs_one_error_event_for_the_journal(tmp_path: Path) -> None:
    bad = RULES.replace("complete and ratio >= 1.0", "complete and ratoi >= 1.0")
    config = write_config(tmp_path, "scgi:///run/rtorrent/rpc.socket", [tmp_path], bad)
    result = rtorrentd("run", "-c", str(config), "--log-format", "journal")
    # Exit 2: the units' RestartPreventExitStatus=2 keeps systemd from retrying for ever.
    assert (2, "") == (result.returncode, result.stdout)
    (line,) = result.stderr.splitlines()  # one journal entry, not one per line of text
    assert line.startswith("<3>event=config.invalid ")
    assert 'rule \\"seeded enough\\": unknown field' in line
    assert "did you mean `ratio`?" in line


def test_check_names_file_line_rule_and_column(tmp_path: Path) -> None:
    bad = RULES.replace("complete and ratio >= 1.0", "complete and ratoi >= 1.0")
    config = write_config(tmp_path, "scgi:///run/rtorrent/rpc.socket", [tmp_path], bad)
    result = rtorrentd("check", "-c", str(config))
    assert 2 == result.returncode
    assert "" == result.stdout
    assert result.stderr.startswith(f'error: {config}:16: rule "seeded enough": unknown field')
    assert "    complete and ratoi >= 1.0\n                 ^" in result.stderr
    assert "did you mean `ratio`?" in result.stderr


def test_a_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    result = rtorrentd("check", "-c", str(tmp_path / "nope.toml"))
    assert 2 == result.returncode
    assert "nope.toml" in result.stderr


def test_check_of_a_fifo_returns_at_once_with_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)  # no writer: a blocking open would wait for one for ever
    result = rtorrentd("check", "-c", str(fifo))  # a 60 s timeout
    expected = (
        f"error: {fifo}: cannot read the configuration: it is a FIFO, not a regular file\n"
        "  name the TOML file itself: a configuration is a regular file of a few kilobytes\n"
    )
    assert (2, "", expected) == (result.returncode, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"timeout = {'9' * 5000}", "timeout = 9999999999999999999999999999999999999999…"),
        (f'timeout = "{"9" * 400}s"', 'timeout = "9999999999999999999999999999999999999999…"'),
    ],
)
def test_check_of_numbers_too_large_for_python_is_an_error(
    tmp_path: Path, line: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[rtorrent]\nurl = "scgi:///r.sock"\n{line}\n')
    result = rtorrentd("check", "-c", str(config))
    assert (2, "") == (result.returncode, result.stdout)
    assert result.stderr.startswith(f"error: {config}:3: [rtorrent]: {message} is ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["plan"], ["run", "--once"], ["list"]])
def test_unreachable_rtorrent_exits_1_and_says_what_to_check(
    tmp_path: Path, command: list[str]
) -> None:
    config = write_config(tmp_path, f"scgi://{tmp_path}/no.socket", [tmp_path])
    result = rtorrentd(*command, "-c", str(config))
    assert 1 == result.returncode
    assert f"no socket at {tmp_path}/no.socket" in result.stderr


@pytest.mark.integration
def test_plan_json_shows_exactly_the_expected_steps(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    seeder, leecher = rtorrent_pair
    download = seeder.download_dir
    popular = torrent_factory("popular.bin", random_bytes(400_000, 1), dest_dir=download)
    make_swarm(seeder, leecher, popular)  # real upload: ratio 1.0
    kept = torrent_factory("family.bin", random_bytes(400_000, 2), dest_dir=download)
    seeder.load(kept, commands=('d.custom1.set="keep"',))
    partial = torrent_factory(
        "partial.iso", random_bytes(50_000, 3), dest_dir=download, write_payload=False
    )
    seeder.load(partial)
    big = torrent_factory("big.mkv", random_bytes(350_000, 4), dest_dir=download)
    seeder.load(big)
    small = torrent_factory("small.txt", random_bytes(1_000, 5), dest_dir=download)
    seeder.load(small)
    config = write_config(tmp_path, seeder.scgi_url, [download])
    before = sorted(p.name for p in download.rglob("*"))

    result = rtorrentd("plan", "-c", str(config), "--format", "json")

    assert (0, "") == (result.returncode, result.stderr)
    expected = [
        {
            "hash": popular.info_hash,
            "name": "popular.bin",
            "rule": "seeded enough",
            "action": "delete",
            "values": {"complete": True, "ratio": 1.0},
        },
        {
            "hash": partial.info_hash,
            "name": "partial.iso",
            "rule": "not downloading",
            "action": "stop",
            "values": {"complete": False},
        },
        {
            "hash": big.info_hash,
            "name": "big.mkv",
            "rule": "big and idle",
            "action": "remove",
            "values": {"complete": True, "size": 350_000},
        },
    ]
    key = lambda step: step["hash"]  # noqa: E731
    assert sorted(expected, key=key) == sorted(json.loads(result.stdout), key=key)
    # `plan` changes nothing.
    assert before == sorted(p.name for p in download.rglob("*"))
    assert 5 == len(seeder.hashes())
