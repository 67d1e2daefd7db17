"""Helpers for tests that run whole polls against a real rtorrent (test_executor,
test_attacks): a client, a config from rules, one poll, and rtorrent's own view."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import RtorrentProcess, TorrentFactory, TorrentFile, random_bytes

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.engine.memory import Memory
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import PollResult, poll_once

Rule = tuple[str, str, str]  # name, condition, action
DOOMED: Rule = ("doomed", 'complete and label == "doomed"', "delete")
LABEL_DOOMED = 'd.custom1.set="doomed"'
RESULT_EVENTS = frozenset(
    {"action.done", "action.planned", "action.skipped", "action.refused", "action.failed"}
)


def client_for(rt: RtorrentProcess) -> RtorrentClient:
    return RtorrentClient(open_transport(rt.scgi_url, timeout=10.0))


def config_for(
    rt: RtorrentProcess,
    roots: Sequence[Path],
    rules: Sequence[Rule] = (DOOMED,),
    *,
    max_deletes: int = 20,
    fraction: float = 1.0,
) -> Config:
    listed = ", ".join(f'"{root}"' for root in roots)
    text = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n'
        f"[safety]\nallowed_roots = [{listed}]\n"
        f"max_deletes_per_poll = {max_deletes}\nmax_delete_fraction = {fraction}\n"
    )
    for name, when, action in rules:
        text += f'[[rule]]\nname = "{name}"\nwhen = \'{when}\'\naction = "{action}"\n'
    return parse_config(text, "test.toml")


async def poll(client: RtorrentClient, config: Config, *, dry_run: bool = False) -> PollResult:
    return await poll_once(client, config, Memory.empty(), dry_run=dry_run, now=time.time())


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def one_result(logs: Sequence[Mapping[str, Any]], info_hash: str) -> Mapping[str, Any]:
    """The single per-step result event for `info_hash`."""
    found = [e for e in logs if e.get("hash") == info_hash and e["event"] in RESULT_EVENTS]
    assert 1 == len(found), found
    return found[0]


def state(rt: RtorrentProcess) -> dict[str, tuple[int, int]]:
    """rtorrent's own view: hash -> (d.state, d.is_open)."""
    rows = rt.call("d.multicall2", "", "main", "d.hash=", "d.state=", "d.is_open=")
    return {h: (s, o) for h, s, o in rows}


def contents(torrent: TorrentFile) -> dict[Path, bytes]:
    """What a torrent's files hold on disk now."""
    root = torrent.payload_path
    paths = [root / os.fsdecode(e.path) for e in torrent.files] if torrent.multi_file else [root]
    return {p: p.read_bytes() for p in paths}


def album(
    factory: TorrentFactory, dest: Path, name: str | bytes = "album", seed: int = 0
) -> TorrentFile:
    return factory(
        name,
        {
            "a.bin": random_bytes(30_000, seed + 1),
            "cd2/b.bin": random_bytes(20_000, seed + 2),
            "cd2/deep/c.bin": random_bytes(10_000, seed + 3),
        },
        dest_dir=dest,
    )


def rtorrentd(*args: str) -> subprocess.CompletedProcess[str]:
    """The `rtorrentd` command as a user runs it: a subprocess, text out, no check."""
    return subprocess.run(
        [sys.executable, "-m", "rtorrentd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
