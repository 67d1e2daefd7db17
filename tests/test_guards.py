"""Guards around rtorrent's own behaviour: each test tries to make rtorrentd lose data
through something rtorrent (or a web UI's set-up of it) does, and proves it refuses.

- `event.download.erased` handlers are judged by their commands, not their keys;
  ruTorrent's own handlers are allowed, anything else refuses `remove` and `delete`.
- `d.erase` deletes the tied `.torrent` wherever it is: one inside data is untied.
- A torrent being hash-checked is not touched (d.stop during a check can deadlock 0.9.8).
- A deletion that could not be carried out is found before anything is stopped.
- An allowed root that is no longer the filesystem it was (an unmounted disk) is not
  deleted from: its files are not "already gone".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flow import (
    DOOMED,
    LABEL_DOOMED,
    Rule,
    album,
    client_for,
    config_for,
    contents,
    one_result,
    poll,
    state,
)
from harness import RtorrentProcess, TorrentFactory, poll_until
from harness.bencode import Bencodable, bencode
from structlog.testing import capture_logs
from trees import Canaries

from rtorrentd.config.model import Config
from rtorrentd.deletion.erase_handlers import Verdict, classify, judge
from rtorrentd.deletion.journal import Journal
from rtorrentd.engine.memory import Memory
from rtorrentd.errors import TransportError
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import PollResult, poll_once

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
USER = "alice"
RUTORRENT = "/var/www/rutorrent"

# --- ruTorrent's handlers, built as its PHP builds them -------------------------------
# plugins/history/history.php and plugins/erasedata/init.php, with getCmd's names for
# rtorrent >= 0.9 (d.get_name -> d.name, ...) or the old ones (`old=True`).


def _cmd(name: str, old: bool) -> str:
    renamed = {
        "d.name": "d.get_name",
        "d.size_bytes": "d.get_size_bytes",
        "d.bytes_done": "d.get_bytes_done",
        "d.up.total": "d.get_up_total",
        "d.ratio": "d.get_ratio",
        "d.creation_date": "d.get_creation_date",
        "d.custom": "d.get_custom",
        "d.hash": "d.get_hash",
        "t.url": "t.get_url",
        "d.custom1": "d.get_custom1",
        "d.custom5": "d.get_custom5",
        "d.base_path": "d.get_base_path",
        "f.frozen_path": "f.get_frozen_path",
    }
    return renamed.get(name, name) if old else name


def history_command(run: str = "sh", *, old: bool = False, php: str = "/usr/bin/php") -> str:
    """The history plugin's erase handler: `sh` (ruTorrent 5), `bg` or `execute` (older)."""
    args = (
        f"{RUTORRENT}/plugins/history/update.php,3,$"
        f"{_cmd('d.name', old)}=,${_cmd('d.size_bytes', old)}=,${_cmd('d.bytes_done', old)}=,$"
        f"{_cmd('d.up.total', old)}=,${_cmd('d.ratio', old)}=,${_cmd('d.creation_date', old)}=,$"
        f"{_cmd('d.custom', old)}=addtime,${_cmd('d.custom', old)}=seedingtime"
        f',"$t.multicall=${_cmd("d.hash", old)}=,{_cmd("t.url", old)}=,cat=#",$'
        f"{_cmd('d.custom1', old)}=,${_cmd('d.custom', old)}=x-pushbullet,{USER}}}"
    )
    starts = {
        "sh": 'execute.nothrow={sh,-c,\\"$0\\" \\"$@\\" </dev/null >/dev/null 2>&1 &,',
        "bg": "execute.nothrow.bg={",
        "execute": "execute={",
    }
    return f"{starts[run]}{php},{args}"


def erasedata_list_command(settings: str, *, old: bool = False) -> str:
    return (
        f'd.open= ; branch={_cmd("d.custom5", old)}=,"f.multicall=,\\"file.append=(cat,{settings}/,'
        f'$system.pid=,.tmp),${_cmd("f.frozen_path", old)}=\\""'
    )


def erasedata_run_command(settings: str, *, old: bool = False) -> str:
    return (
        f"branch={_cmd('d.custom5', old)}=,"
        f'"execute={{{RUTORRENT}/plugins/erasedata/fin.sh,{settings},'
        f"$system.pid=,${_cmd('d.hash', old)}=,${_cmd('d.base_path', old)}=,$d.is_multi_file=,"
        f'${_cmd("d.custom5", old)}=}}"'
    )


RTORRENT_DEFAULTS = {"!_download_list": "ui.unfocus_download=", "~_delete_tied": "d.delete_tied="}
SETTINGS = "/var/lib/rutorrent/share/users/alice/settings/erasedata"


def rutorrent_handlers(settings: str = SETTINGS, *, old: bool = False) -> dict[str, str]:
    return {
        f"thistory{USER}": history_command(old=old),
        f"erasedata0{USER}": erasedata_list_command(settings, old=old),
        f"erasedata1{USER}": erasedata_run_command(settings, old=old),
    }


# --- the table of handlers (unit) ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "command", "verdict"),
    [
        ("!_download_list", "ui.unfocus_download=", Verdict.KEEPS),
        ("~_delete_tied", "d.delete_tied=", Verdict.KEEPS),
        ("thistory", "cat=", Verdict.KEEPS),  # deletions not logged; single-user install
        (f"thistory{USER}", history_command("sh"), Verdict.KEEPS),
        (f"thistory{USER}", history_command("bg"), Verdict.KEEPS),
        (f"thistory{USER}", history_command("execute", old=True), Verdict.KEEPS),
        (f"erasedata0{USER}", erasedata_list_command(SETTINGS), Verdict.KEEPS_IF_NO_CUSTOM5),
        (
            f"erasedata0{USER}",
            erasedata_list_command(SETTINGS, old=True),
            Verdict.KEEPS_IF_NO_CUSTOM5,
        ),
        (f"erasedata1{USER}", erasedata_run_command(SETTINGS), Verdict.KEEPS_IF_NO_CUSTOM5),
        (
            f"erasedata1{USER}",
            erasedata_run_command(SETTINGS, old=True),
            Verdict.KEEPS_IF_NO_CUSTOM5,
        ),
    ],
)
def test_known_handlers(key: str, command: str, verdict: Verdict) -> None:
    assert verdict == classify(key, command)


RM_BASE_PATH = "execute={rm,-rf,--,$d.base_path=}"


@pytest.mark.parametrize(
    ("key", "command"),
    [
        # rtorrent's own keys, someone else's commands
        ("~_delete_tied", RM_BASE_PATH),
        ("~_delete_tied", "d.delete_tied= ; " + RM_BASE_PATH),
        ("!_download_list", "ui.unfocus_download=;" + RM_BASE_PATH),
        ("~_delete_tied", ["d.delete_tied=", RM_BASE_PATH]),  # several commands
        ("~_delete_tied", ""),
        # ruTorrent's keys, someone else's commands
        (f"thistory{USER}", RM_BASE_PATH),
        (f"thistory{USER}", history_command(php="/bin/rm -rf")),
        (f"thistory{USER}", history_command().replace("update.php,3,", "update.php,3,$d.erase=,")),
        (f"thistory{USER}", history_command().replace("/plugins/history/", "/plugins/evil/")),
        (f"thistory{USER}", history_command() + " ; " + RM_BASE_PATH),
        (f"erasedata1{USER}", erasedata_run_command(SETTINGS).replace("branch=d.custom5=,", "")),
        (f"erasedata1{USER}", erasedata_run_command(SETTINGS).replace("fin.sh", "rm.sh")),
        (f"erasedata0{USER}", erasedata_list_command(SETTINGS) + ";" + RM_BASE_PATH),
        # known commands under a key that is not theirs
        ("rm_data", "d.delete_tied="),
        (f"erasedata0{USER}", history_command()),
        ("delete_tied", "d.delete_tied="),
    ],
)
def test_any_other_handler_may_delete_data(key: str, command: object) -> None:
    assert Verdict.UNKNOWN == classify(key, command)


def test_the_policy_names_every_unknown_handler_and_the_custom5_ones() -> None:
    policy = judge({**RTORRENT_DEFAULTS, **rutorrent_handlers(), "zz": "print=x"})

    assert ("zz",) == policy.unknown
    assert (f"erasedata0{USER}", f"erasedata1{USER}") == policy.custom5
    assert "event.download.erased: zz" in policy.refusal()
    assert "" == policy.refusal_for("")
    assert "erasedata0alice, erasedata1alice" in policy.refusal_for("1")
    assert "" == judge({**RTORRENT_DEFAULTS, **rutorrent_handlers()}).refusal()


# --- erase handlers against a real rtorrent -------------------------------------------

BY_LABEL: tuple[Rule, ...] = (
    ("d", 'label == "delete"', "delete"),
    ("r", 'label == "remove"', "remove"),
    ("s", 'label == "stop"', "stop"),
)


def load_labelled(
    rt: RtorrentProcess, factory: TorrentFactory, labels: Mapping[str, str] = {}
) -> dict[str, Any]:
    """An album per action (`delete`, `remove`, `stop`), started and complete;
    `labels` adds more: name -> label."""
    torrents = {}
    for seed, (name, label) in enumerate(
        {"delete": "delete", "remove": "remove", "stop": "stop", **labels}.items()
    ):
        torrents[name] = album(factory, rt.download_dir, name=name, seed=10 * seed)
        rt.load(torrents[name], commands=(f'd.custom1.set="{label}"',), complete=True)
    return torrents


def set_handlers(rt: RtorrentProcess, handlers: Mapping[str, str]) -> None:
    """As ruTorrent registers them: `method.set_key` over XML-RPC."""
    for key, command in handlers.items():
        rt.call("method.set_key", "", "event.download.erased", key, command)


def test_the_real_default_handlers_are_the_ones_in_the_table(rtorrent: RtorrentProcess) -> None:
    handlers = rtorrent.call("method.get", "", "event.download.erased")

    assert RTORRENT_DEFAULTS == handlers
    assert "" == judge(handlers).refusal()


def fin_sh(tmp_path: Path) -> Path:
    """A stand-in for erasedata's fin.sh that deletes what it is given, as the real one
    does when d.custom5 is set; a file `ran` records that it ran."""
    script = tmp_path / "rutorrent/plugins/erasedata/fin.sh"
    script.parent.mkdir(parents=True)
    script.write_text(f'#!/bin/sh\ntouch {tmp_path}/ran\nrm -rf -- "$5"\n')
    script.chmod(0o755)
    return script


async def test_remove_and_delete_work_on_a_rutorrent_install(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path, canaries: Canaries
) -> None:
    settings = tmp_path / "settings/erasedata"
    settings.mkdir(parents=True)
    handlers = rutorrent_handlers(str(settings))
    handlers[f"erasedata1{USER}"] = erasedata_run_command(str(settings)).replace(
        RUTORRENT, str(tmp_path / "rutorrent")
    )
    fin_sh(tmp_path)
    set_handlers(rtorrent, handlers)
    torrents = load_labelled(rtorrent, torrent_factory)
    canaries.keep({**contents(torrents["remove"]), **contents(torrents["stop"])})

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir], BY_LABEL))

    for name in ("delete", "remove", "stop"):
        assert "action.done" == one_result(logs, torrents[name].info_hash)["event"], name
    assert not torrents["delete"].payload_path.exists()
    assert {torrents["stop"].info_hash} == set(rtorrent.hashes())
    assert not (tmp_path / "ran").exists()  # erasedata's branch did not run
    assert [] == os.listdir(settings)  # nor did its file list
    canaries.check()


@pytest.mark.parametrize("key", ["~_delete_tied", "!_download_list", f"thistory{USER}"])
async def test_an_rm_rf_handler_under_a_known_key_refuses_remove_and_delete(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries, key: str
) -> None:
    set_handlers(rtorrent, {**rutorrent_handlers(), key: RM_BASE_PATH})
    torrents = load_labelled(rtorrent, torrent_factory)
    for torrent in torrents.values():
        canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir], BY_LABEL))

    for name in ("delete", "remove"):
        event = one_result(logs, torrents[name].info_hash)
        assert "action.refused" == event["event"]
        assert f"event.download.erased: {key}" in event["reason"]
    assert "action.done" == one_result(logs, torrents["stop"].info_hash)["event"]
    assert {t.info_hash for t in torrents.values()} == set(rtorrent.hashes())
    canaries.check()


async def test_erasedata_refuses_a_torrent_whose_custom5_is_set(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path, canaries: Canaries
) -> None:
    # ruTorrent's "delete with data" sets d.custom5; erasedata then deletes every listed
    # file, shared or hard-linked or not. Only that torrent is refused.
    settings = tmp_path / "settings/erasedata"
    set_handlers(rtorrent, rutorrent_handlers(str(settings)))
    torrents = load_labelled(rtorrent, torrent_factory, {"marked": "delete", "marked2": "remove"})
    for name in ("marked", "marked2"):
        rtorrent.call("d.custom5.set", torrents[name].info_hash, "1")
        canaries.keep(contents(torrents[name]))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir], BY_LABEL))

    for name in ("marked", "marked2"):
        event = one_result(logs, torrents[name].info_hash)
        assert "action.refused" == event["event"]
        assert "d.custom5 is '1'" in event["reason"] and "erasedata0alice" in event["reason"]
        assert (1, 1) == state(rtorrent)[torrents[name].info_hash]  # not even stopped
    assert "action.done" == one_result(logs, torrents["delete"].info_hash)["event"]
    assert "action.done" == one_result(logs, torrents["remove"].info_hash)["event"]
    canaries.check()


# --- the tied .torrent ------------------------------------------------------------------


def load_from_file(
    rt: RtorrentProcess, data: bytes, path: Path, info_hash: str, *cmds: str
) -> None:
    """Load a .torrent from a file, as a watch directory does: rtorrent ties it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rt.call("load.start", "", str(path), *cmds)
    poll_until(lambda: info_hash in rt.hashes(), timeout=15, what=f"{info_hash} listed")
    poll_until(lambda: rt.call("d.is_hash_checked", info_hash) == 1, timeout=15, what="checked")
    # As `RtorrentProcess.load`: 0.16 writes a new torrent's session in the background.
    poll_until(lambda: rt.session_saved(info_hash), timeout=15, what="its session files")
    assert str(path) == rt.call("d.tied_to_file", info_hash)


@pytest.mark.parametrize("action", ["delete", "remove"])
async def test_a_tied_torrent_file_inside_another_torrents_data_is_kept(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries, action: str
) -> None:
    dl = rtorrent.download_dir
    library = album(torrent_factory, dl, name="library", seed=1)
    rtorrent.load(library, complete=True)
    doomed = album(torrent_factory, dl, name="doomed", seed=2)
    inside = library.payload_path / "extras/doomed.torrent"  # not listed by `library`
    load_from_file(
        rtorrent,
        doomed.data,
        inside,
        doomed.info_hash,
        f"d.directory.set={dl}",
        f'd.custom1.set="{action}"',
    )
    canaries.keep({inside: doomed.data, **contents(library)})
    if action == "remove":
        canaries.keep(contents(doomed))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl], BY_LABEL))

    assert "action.done" == one_result(logs, doomed.info_hash)["event"]
    assert [inside] == [Path(e["file"]) for e in logs if e["event"] == "tied.untied"]
    assert [library.info_hash] == rtorrent.hashes()
    canaries.check()


async def test_a_tied_torrent_file_in_a_watch_directory_goes_as_rtorrent_means(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # Deleting it keeps a watch directory from loading the torrent again.
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl, name="doomed")
    watched = tmp_path / "watch/doomed.torrent"
    load_from_file(
        rtorrent, doomed.data, watched, doomed.info_hash, f"d.directory.set={dl}", LABEL_DOOMED
    )

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    assert "action.done" == one_result(logs, doomed.info_hash)["event"]
    assert not watched.exists()
    assert not [e for e in logs if e["event"] == "tied.untied"]


# --- hash checks ------------------------------------------------------------------------

BIG = 1024 * 2**20  # hashing this takes rtorrent seconds: long enough to act during it
PIECE = 4 * 2**20


def fast_resumed(directory: Path, name: str = "big.bin", size: int = BIG) -> tuple[str, bytes]:
    """A sparse file of `size` zero bytes and its torrent, with libtorrent's resume data
    saying it is complete, so it loads complete at once (no first check)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / name).open("wb") as payload:
        payload.truncate(size)
    pieces = -(-size // PIECE)
    info: dict[bytes, Bencodable] = {
        b"name": name.encode(),
        b"length": size,
        b"piece length": PIECE,
        b"pieces": hashlib.sha1(bytes(PIECE)).digest() * pieces,
    }
    mtime = int((directory / name).stat().st_mtime)
    resume: dict[bytes, Bencodable] = {
        b"bitfield": pieces,
        b"files": [{b"mtime": mtime, b"completed": pieces, b"priority": 1}],
    }
    metainfo: dict[bytes, Bencodable] = {
        b"announce": b"http://127.0.0.1:1/announce",
        b"info": info,
        b"libtorrent_resume": resume,
    }
    return hashlib.sha1(bencode(info)).hexdigest().upper(), bencode(metainfo)


def hashing(rt: RtorrentProcess, info_hash: str) -> int:
    value: int = rt.call("d.hashing", info_hash)
    return value


@pytest.mark.parametrize("action", ["delete", "stop", "remove"])
async def test_a_torrent_being_hash_checked_is_left_alone_until_the_check_ends(
    rtorrent: RtorrentProcess, tmp_path: Path, action: str
) -> None:
    dl = rtorrent.download_dir
    info_hash, data = fast_resumed(dl)
    rtorrent.call(
        "load.raw_start",
        "",
        xmlrpc.client.Binary(data),
        f"d.directory.set={dl}",
        f'd.custom1.set="{action}"',
    )
    poll_until(lambda: info_hash in rtorrent.hashes(), timeout=15, what="listed")
    poll_until(lambda: rtorrent.session_saved(info_hash), timeout=15, what="its session files")
    assert (1, 1) == (rtorrent.call("d.complete", info_hash), rtorrent.call("d.state", info_hash))
    rtorrent.call("d.check_hash", info_hash)
    poll_until(lambda: hashing(rtorrent, info_hash) != 0, timeout=15, what="the check to start")
    # Still complete and started while checked: the rule matches.
    assert (1, 1) == (rtorrent.call("d.complete", info_hash), rtorrent.call("d.state", info_hash))
    config = config_for(rtorrent, [dl], BY_LABEL)

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert hashing(rtorrent, info_hash) != 0, "the check ended before the poll: make BIG larger"
    event = one_result(logs, info_hash)
    assert ("action.skipped", "rtorrent is hash-checking it") == (
        event["event"],
        event["reason"].split(";")[0],
    )
    assert {info_hash: (1, 1)} == state(rtorrent)
    assert (dl / "big.bin").stat().st_size == BIG

    poll_until(lambda: hashing(rtorrent, info_hash) == 0, timeout=120, what="the check to end")
    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert "action.done" == one_result(logs, info_hash)["event"]
    assert (action == "delete") != (dl / "big.bin").exists()


# --- deletions that cannot be carried out are found before d.stop ---------------------


@pytest.fixture
def chattr() -> Iterator[list[Path]]:
    """Paths a test makes immutable (`chattr +i`); made mutable again afterwards."""
    if shutil.which("chattr") is None:
        pytest.fail("chattr is missing (Debian package: e2fsprogs)")
    paths: list[Path] = []
    yield paths
    for path in paths:
        subprocess.run(["chattr", "-i", "-a", str(path)], check=False)


@pytest.mark.parametrize(
    ("target", "flag"),
    [("a.bin", "+i"), ("cd2/deep/c.bin", "+a"), ("cd2", "+i"), ("cd2/deep", "+a")],
)
async def test_an_immutable_file_or_directory_is_found_before_stopping(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    *,
    chattr: list[Path],
    target: str,
    flag: str,
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir, name="doomed")
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    canaries.keep(contents(doomed))
    path = doomed.payload_path / target
    chattr.append(path)
    done = subprocess.run(["chattr", flag, str(path)], check=False, capture_output=True)
    assert 0 == done.returncode, f"chattr does not work on {path}: {done.stderr!r}"

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir]))

    event = one_result(logs, info_hash)
    assert "action.refused" == event["event"]
    assert "immutable or append-only" in event["reason"]
    assert {info_hash: (1, 1)} == state(rtorrent)  # still started: nothing was stopped
    canaries.check()


# --- filesystems: read-only, and roots that are not the disk they were -----------------
# Run in a private mount namespace (unshare -m), where a poll sees mounts that
# rtorrent and the rest of the machine do not.

_IN_NAMESPACE = r"""
import json, os, subprocess, sys, time
import anyio
from structlog.testing import capture_logs
from rtorrentd.config.load import parse_config
from rtorrentd.deletion import preflight
from rtorrentd.engine.memory import Memory
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import poll_once

args = json.loads(sys.argv[1])
for command in args["before"]:
    subprocess.run(command, check=True)
for path, text in args["files"].items():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if isinstance(text, int):
            f.truncate(text)  # sparse: created, never written
        else:
            f.write(text)
filesystems = preflight.remember(args["roots"])
for command in args["after"]:
    subprocess.run(command, check=True)
config = parse_config(args["config"], "test.toml")
client = RtorrentClient(open_transport(config.rtorrent.url, timeout=10.0))
with capture_logs() as logs:
    anyio.run(lambda: poll_once(
        client, config, Memory.empty(), dry_run=False, now=time.time(), filesystems=filesystems
    ))
results = [e for e in logs if e["event"].startswith("action.") and e["event"] != "action.deleting"]
print(json.dumps([{k: e.get(k) for k in ("event", "hash", "reason")} for e in results]))
"""


def poll_in_namespace(
    rt: RtorrentProcess, roots: list[Path], rules: tuple[Rule, ...], **args: Any
) -> list[dict[str, Any]]:
    """One poll in a throwaway mount namespace: `before` commands, `files` written,
    the roots' filesystems remembered, `after` commands, then the poll."""
    config_text = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n'
        f"[safety]\nallowed_roots = [{', '.join(json.dumps(str(r)) for r in roots)}]\n"
        "max_deletes_per_poll = 20\nmax_delete_fraction = 1.0\n"
    )
    for name, when, action in rules:
        config_text += f'[[rule]]\nname = "{name}"\nwhen = \'{when}\'\naction = "{action}"\n'
    payload = {"before": [], "after": [], "files": {}, **args, "roots": [str(r) for r in roots]}
    payload["config"] = config_text
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            _IN_NAMESPACE,
            json.dumps(payload),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert 0 == done.returncode, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


DOOMED_STOPPED: Rule = ("doomed", 'label == "doomed"', "delete")


@pytest.mark.usefixtures("mount_namespace")
@pytest.mark.parametrize("unmounted", [False, True])
def test_files_missing_from_an_unmounted_disk_are_not_taken_for_deleted(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path, unmounted: bool
) -> None:
    # The disk is a tmpfs at the allowed root, seen only inside the namespace; rtorrent
    # has the torrent stopped and closed (as after a restart), so it cannot tell either.
    disk = tmp_path / "disk"
    disk.mkdir()
    doomed = album(torrent_factory, tmp_path / "elsewhere", name="doomed")
    info_hash = rtorrent.load(doomed, start=False, directory=disk, commands=(LABEL_DOOMED,))
    # As rtorrent leaves the files of a torrent it has no piece of: sparse, no data
    # (any data would have to be shown to be the torrent's before it goes).
    files = {str(disk / "doomed" / os.fsdecode(e.path)): e.size for e in doomed.files}

    results = poll_in_namespace(
        rtorrent,
        [disk],
        (DOOMED_STOPPED,),
        before=[["mount", "-t", "tmpfs", "disk", str(disk)]],
        files=files,
        after=[["umount", str(disk)]] if unmounted else [],
    )

    (result,) = results
    if unmounted:
        assert "action.refused" == result["event"], result
        assert "not the filesystem it was when rtorrentd started" in result["reason"]
        assert [info_hash] == rtorrent.hashes()
    else:  # the same set-up, disk mounted: deleted
        assert "action.done" == result["event"], result
        assert [] == rtorrent.hashes()


@pytest.mark.usefixtures("mount_namespace")
def test_a_read_only_filesystem_is_found_before_stopping(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl, name="doomed")
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    canaries.keep(contents(doomed))

    results = poll_in_namespace(
        rtorrent,
        [dl],
        (DOOMED,),
        before=[["mount", "--bind", str(dl), str(dl)], ["mount", "-o", "remount,bind,ro", str(dl)]],
    )

    (result,) = results
    assert "action.refused" == result["event"], result
    assert "mounted read-only" in result["reason"]
    assert {info_hash: (1, 1)} == state(rtorrent)  # still started: nothing was stopped
    canaries.check()


# --- durable completion: a deletion that has begun is finished -------------------------
# rtorrent is killed at each point of a deletion; it comes back with whatever its
# session holds (0.16 saves in the background, 0.9.8 may not have saved at all), and
# is then made to do the worst: start the torrent again, so it is hash-checked,
# incomplete, and no `complete and ...` rule matches it any more.


class KillingClient(RtorrentClient):
    """Kills rtorrent (SIGKILL) at one point of the deletion: before `d.stop`, after
    `d.stop`, after `d.close`, or after the unlinks, before `d.erase`."""

    def __init__(self, rt: RtorrentProcess, point: str) -> None:
        super().__init__(open_transport(rt.scgi_url, timeout=10.0))
        self.rt, self.point = rt, point

    async def call(self, method: str, *params: object) -> object:
        if (method, self.point) in {("d.stop", "before"), ("d.erase", "erase")}:
            self.rt.kill()
        result = await super().call(method, *params)
        if method == self.point:
            self.rt.kill()
        return result


def restart_started(rt: RtorrentProcess, info_hash: str) -> None:
    """Start rtorrent again from its session, then start the torrent (if it is still
    there) and wait until its hash check is over."""
    rt.start()
    if info_hash not in rt.hashes():
        return
    rt.call("d.start", info_hash)
    poll_until(
        lambda: (
            (rt.call("d.hashing", info_hash), rt.call("d.is_hash_checked", info_hash)) == (0, 1)
        ),
        timeout=30,
        what="the restarted torrent to be checked",
    )


async def poll_with(client: RtorrentClient, config: Config, journal: Journal) -> PollResult:
    return await poll_once(
        client, config, Memory.empty(), dry_run=False, now=time.time(), journal=journal
    )


@pytest.mark.parametrize("point", ["before", "d.stop", "d.close", "erase"])
async def test_a_deletion_killed_at_any_point_is_finished_by_a_later_poll(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    tmp_path: Path,
    canaries: Canaries,
    point: str,
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl, name="doomed")
    kept = album(torrent_factory, dl, name="kept", seed=7)
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    rtorrent.load(kept, complete=True)
    canaries.keep(contents(kept))
    config = config_for(rtorrent, [dl])
    journal = Journal(str(tmp_path / "state"))

    with pytest.raises(TransportError):
        await poll_with(KillingClient(rtorrent, point), config, journal)
    assert [info_hash] == [i.hash for i in journal.pending()]
    restart_started(rtorrent, info_hash)
    if point == "erase":  # its files are gone: incomplete, so its rule no longer matches
        assert 0 == rtorrent.call("d.complete", info_hash)
        with capture_logs() as logs:
            await poll(client_for(rtorrent), config)  # no journal: nothing finishes it
        assert not [e for e in logs if e.get("hash") == info_hash]

    with capture_logs() as logs:
        await poll_with(client_for(rtorrent), config, journal)

    assert "action.done" == one_result(logs, info_hash)["event"], one_result(logs, info_hash)
    assert [kept.info_hash] == rtorrent.hashes()
    assert not doomed.payload_path.exists()
    assert () == journal.pending()
    canaries.check()
