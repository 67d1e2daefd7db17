"""Orphan cleanup against real rtorrents (0.9.8 and 0.16) and real files: what is
moved, and every way tried to make it move the wrong thing (issue 13, part 2).

Times: files get an old mtime with `os.utime`; their ctime cannot be set, so scans
that must find orphans run with a clock three days ahead (`LATER`), and scans at
the real time prove that a file copied in with an old mtime (new ctime) stays.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from flow import album, client_for, rtorrentd
from harness import RtorrentProcess, TorrentFactory, poll_until
from structlog.testing import capture_logs
from trees import Canaries

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import OrphanSettings
from rtorrentd.deletion import trash, trash_restore
from rtorrentd.deletion.model import Identity
from rtorrentd.deletion.orphan_listing import Source
from rtorrentd.deletion.orphans import Cleaned, Moved, Scan, clean, scan
from rtorrentd.service.instance import Instance
from rtorrentd.service.lifecycle import Lifecycle

DAY = 86400.0
SETTINGS = OrphanSettings(min_age=DAY, exclude=("*.part", ".stfolder/**"))
REPO = Path(__file__).resolve().parent.parent


def later() -> float:
    """Three days from now: every file made by the test is old then, by both times."""
    return time.time() + 3 * DAY


def old(path: Path, data: bytes = b"orphan data") -> Path:
    """A file (or, with data=b"", an existing entry) whose mtime is ten days ago."""
    if data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    then = time.time() - 10 * DAY
    os.utime(path, (then, then), follow_symlinks=False)
    return path


class Bin:
    """The recycle bin at `directory` (`trash.trash_paths`, as the daemon moves
    orphans), recording what it moved."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.moved: list[str] = []

    def __call__(self, root: str, items: Sequence[tuple[str, Identity]]) -> Moved:
        paths = [path for path, _ in items]
        out = trash.trash_paths(str(self.directory), root, paths, "test", identities=dict(items))
        self.moved += out.moved
        return out.moved, [(note.path, note.reason) for note in out.skipped]

    def data(self) -> Path:
        """The data directory of the one entry in the bin."""
        (entry,) = trash.entries(str(self.directory))
        assert "orphan" == entry.manifest.kind
        return Path(entry.path) / "data"


def source(rt: RtorrentProcess, label: str = "this") -> Source:
    return Source(label, rt.scgi_url, client_for(rt))


async def scan_and_clean(
    sources: Sequence[Source],
    roots: Sequence[Path],
    bin_: Bin,
    *,
    settings: OrphanSettings = SETTINGS,
    clock: Callable[[], float] = later,
    between: Callable[[], None] = lambda: None,
) -> tuple[Scan, list[Cleaned]]:
    """A scan, then `between` (what happens meanwhile), then the re-check and move."""
    found, listing = await scan(sources, [str(r) for r in roots], settings, now=clock())
    between()
    if listing is None:
        return found, []
    return found, await clean(found, listing, settings, bin_, clock=clock)


def paths(found: Scan) -> set[str]:
    return {o.seen.path for o in found.orphans}


def results(done: Sequence[Cleaned]) -> dict[str, str]:
    return {c.orphan.seen.path: c.result + (f": {c.detail}" if c.detail else "") for c in done}


# --- what is an orphan --------------------------------------------------------------------


@pytest.mark.anyio
async def test_only_unlisted_old_files_links_and_empty_directories_go(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    rtorrent.load(seeded, complete=True)
    for entry in seeded.files:
        old(dl / "Album" / os.fsdecode(entry.path), b"")
    canaries.keep(
        {
            dl / "Album" / os.fsdecode(e.path): (dl / "Album" / os.fsdecode(e.path)).read_bytes()
            for e in seeded.files
        }
    )
    outside = canaries.add(tmp_path / "outside" / "canary.bin")
    canaries.add(tmp_path / "outside" / "deep" / "canary2.bin")
    orphan = old(dl / "removed-torrent" / "movie.mkv")
    loose = old(dl / "loose.nfo")
    empty = dl / "empty-dir"
    empty.mkdir()
    old(empty, b"")
    (dl / "link-out").symlink_to(outside)  # a link: it goes, its target stays
    (dl / "dir-link-out").symlink_to(tmp_path / "outside")  # never followed
    old(dl / "link-out", b"")
    old(dl / "dir-link-out", b"")
    kept = {
        old(dl / "movie.mkv.part"),  # excluded
        old(dl / ".stfolder" / "marker"),  # excluded, with its directory
        dl / "Album" / "a.bin",
    }
    os.link(dl / "Album" / "a.bin", dl / "hard-link-of-a.bin")  # a listed file's inode
    kept.add(old(dl / "hard-link-of-a.bin", b""))
    bin_ = Bin(tmp_path / "bin")

    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "" == found.refused
    expected = {str(p) for p in (orphan, loose, empty, dl / "link-out", dl / "dir-link-out")}
    assert expected == paths(found)
    assert {p: "moved" for p in expected - {str(empty)}} | {str(empty): "removed"} == results(done)
    assert all(not Path(p).exists() and not Path(p).is_symlink() for p in expected)
    assert (bin_.data() / "removed-torrent" / "movie.mkv").read_bytes() == b"orphan data"
    assert (bin_.data() / "dir-link-out").is_symlink()
    assert all(p.exists() for p in kept)
    canaries.check()
    reasons = {o.seen.path: o.reason for o in found.orphans}
    assert "listed by no loaded torrent of this; no other hard link" in reasons[str(orphan)]
    assert "an empty directory" in reasons[str(empty)]
    assert found.torrents == 1 and found.listed_files == 3


@pytest.mark.anyio
async def test_a_file_copied_in_with_an_old_mtime_is_young_by_its_ctime(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    copied = old(dl / "copied-with-cp-p.mkv")  # mtime ten days ago; ctime now
    bin_ = Bin(tmp_path / "bin")

    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_, clock=time.time)

    assert set() == paths(found) and [] == done
    assert copied.exists()


# --- whole scans refused ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_incomplete_torrent_whose_files_are_not_created_refuses_the_scan(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    pending = album(torrent_factory, tmp_path / "nowhere", name="pending")
    rtorrent.load(pending, start=False, directory=dl)  # files not created yet
    orphan = old(dl / "old.mkv")

    found, done = await scan_and_clean([source(rtorrent)], [dl], Bin(tmp_path / "bin"))

    assert "is incomplete and its file" in found.refused and pending.info_hash in found.refused
    assert [] == done and orphan.exists()


@pytest.mark.anyio
async def test_files_of_another_instance_are_kept_and_an_unreachable_one_refuses(
    rtorrent: RtorrentProcess,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    dl = rtorrent.download_dir
    theirs = album(torrent_factory, dl, name="theirs")
    orphan = old(dl / "old.mkv")
    with make_rtorrent(tmp_path / "other", clean_exit=False) as other:
        other.load(theirs, complete=True)
        for entry in theirs.files:
            old(dl / "theirs" / os.fsdecode(entry.path), b"")
        sources = [source(rtorrent), source(other, "other")]

        found, done = await scan_and_clean(sources, [dl], Bin(tmp_path / "bin"))

        assert {str(orphan)} == paths(found)
        assert "of this, other" in found.orphans[0].reason
        assert all((dl / "theirs" / os.fsdecode(e.path)).exists() for e in theirs.files)
        old(dl / "old2.mkv")
        other.kill()
        found, done = await scan_and_clean(sources, [dl], Bin(tmp_path / "bin"))
        assert found.refused.startswith("other cannot be read")
        assert [] == done and (dl / "old2.mkv").exists()


@pytest.mark.anyio
async def test_our_own_rtorrent_unreachable_refuses(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    orphan = old(rtorrent.download_dir / "old.mkv")
    rtorrent.kill()

    found, _done = await scan_and_clean(
        [source(rtorrent)], [rtorrent.download_dir], Bin(tmp_path / "bin")
    )

    assert found.refused.startswith("this cannot be read")
    assert orphan.exists()


# --- changes between the scan and the move ----------------------------------------------------


@pytest.mark.anyio
async def test_what_changes_between_scan_and_move_stays(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    linked = old(dl / "linked.mkv")
    replaced = old(dl / "replaced.mkv")
    touched = old(dl / "touched.mkv")
    late = torrent_factory("late.bin", b"a torrent loaded during the scan", dest_dir=dl)
    old(dl / "late.bin", b"")
    filled = dl / "filled-dir"
    filled.mkdir()
    old(filled, b"")
    untouched = old(dl / "untouched.mkv")

    def meanwhile() -> None:
        os.link(linked, dl / "a-new-hard-link.mkv")  # its ctime is new now
        (dl / "replacement").write_bytes(b"new data")
        os.rename(dl / "replacement", replaced)  # another inode at that path
        touched.write_bytes(b"written to")
        rtorrent.load(late, complete=True)  # a torrent loaded during the scan
        (filled / "created.bin").write_bytes(b"created during the scan")

    bin_ = Bin(tmp_path / "bin")
    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_, between=meanwhile)

    wanted = {str(p) for p in (linked, replaced, touched, dl / "late.bin", filled, untouched)}
    assert wanted == paths(found)
    outcome = results(done)
    assert outcome.pop(str(untouched)) == "moved"
    assert outcome.pop(str(dl / "late.bin")) == "kept: a loaded torrent lists this path"
    assert outcome.pop(str(replaced)) == "kept: another entry is there now"
    assert outcome.pop(str(linked)) == "kept: its hard links changed (1 -> 2)"
    assert outcome.pop(str(touched)) == "kept: it was modified since the scan"
    assert outcome.pop(str(filled)) == "kept: a directory that is not empty"
    assert {} == outcome
    assert [str(untouched)] == bin_.moved
    assert b"new data" == replaced.read_bytes() and (dl / "late.bin").exists()


# --- odd names ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_odd_names_are_handled_and_lookalikes_of_listed_names_kept(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    latin = torrent_factory(b"caf\xe9.bin", b"a latin-1 name rtorrent shows lossily", dest_dir=dl)
    rtorrent.load(latin, complete=True)
    listed = os.path.join(os.fsencode(dl), b"caf\xe9.bin")
    old(Path(os.fsdecode(listed)), b"")
    lookalike = old(Path(os.fsdecode(os.path.join(os.fsencode(dl), b"caf\xe8.bin"))))
    newline = old(dl / "two\nlines.mkv")
    invalid = old(Path(os.fsdecode(os.path.join(os.fsencode(dl), b"not-utf8-\xff.mkv"))))
    bin_ = Bin(tmp_path / "bin")

    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert {str(newline), str(invalid)} == paths(found)
    assert {"moved"} == set(results(done).values())
    assert os.path.exists(listed) and lookalike.exists()


# --- mounts ---------------------------------------------------------------------------------

_IN_NAMESPACE = r"""
import json, os, subprocess, sys, time
import anyio
from rtorrentd.config.load import parse_config
from rtorrentd.config.model import OrphanSettings
from rtorrentd.deletion import preflight
from rtorrentd.deletion.orphan_listing import Source
from rtorrentd.deletion.orphans import scan
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.instance import Instance
from rtorrentd.service.lifecycle import Lifecycle

args = json.loads(sys.argv[1])
root = args["root"]
for command in args["before"]:
    subprocess.run(command, check=True)
filesystems = preflight.remember([root])
for command in args["after"]:
    subprocess.run(command, check=True)
then = time.time() - 10 * 86400
for path in args["orphans"]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"old")
    os.utime(path, (then, then))
source = Source("this", args["url"], RtorrentClient(open_transport(args["url"])))
later = time.time() + 3 * 86400
found, _ = anyio.run(
    lambda: scan([source], [root], OrphanSettings(), now=later, filesystems=filesystems)
)
print(json.dumps({"refused": found.refused, "orphans": sorted(o.seen.path for o in found.orphans)}))
"""


def scan_in_namespace(rt: RtorrentProcess, root: Path, **args: object) -> dict[str, object]:
    payload = {
        "before": [],
        "after": [],
        "orphans": [],
        **args,
        "root": str(root),
        "url": rt.scgi_url,
    }
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
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.usefixtures("mount_namespace")
def test_an_unmounted_root_refuses_the_scan(rtorrent: RtorrentProcess, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    hidden = str(disk / "under-the-mount-point.mkv")  # only seen once the disk is gone

    result = scan_in_namespace(
        rtorrent,
        disk,
        before=[["mount", "-t", "tmpfs", "disk", str(disk)]],
        after=[["umount", str(disk)]],
        orphans=[hidden],
    )

    assert "is not the filesystem it was when rtorrentd started" in str(result["refused"])
    assert [] == result["orphans"]


@pytest.mark.usefixtures("mount_namespace")
def test_a_disk_or_bind_mount_inside_a_root_is_never_walked(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    library = tmp_path / "library"
    library.mkdir()
    (dl / "library").mkdir()
    (dl / "tmpfs").mkdir()

    result = scan_in_namespace(
        rtorrent,
        dl,
        before=[
            ["mount", "--bind", str(library), str(dl / "library")],
            ["mount", "-t", "tmpfs", "disk", str(dl / "tmpfs")],
        ],
        orphans=[
            str(dl / "library" / "film.mkv"),
            str(dl / "tmpfs" / "x.bin"),
            str(dl / "old.mkv"),
        ],
    )

    assert "" == result["refused"]
    assert [str(dl / "old.mkv")] == result["orphans"]


# --- the command ----------------------------------------------------------------------------


def config_text(
    rt: RtorrentProcess, root: Path, orphans: str = '[orphans]\nmin_age = "1s"\n'
) -> str:
    """One instance's configuration; its recycle bin beside the allowed root."""
    bin_dir = root.parent / "trash"
    return (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n[safety]\nallowed_roots = ["{root}"]\n'
        f'[trash]\npath = "{bin_dir}"\n{orphans}'
    )


def test_the_command_says_what_would_move_and_why_for_every_instance(
    rtorrent: RtorrentProcess,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    dl = rtorrent.download_dir
    orphan = old(dl / "two\nlines.mkv")
    created = os.lstat(orphan).st_ctime
    configs = tmp_path / "instances"
    configs.mkdir()
    (configs / "roger.toml").write_text(config_text(rtorrent, dl))
    with make_rtorrent(tmp_path / "bob", clean_exit=False) as bob:
        theirs = album(torrent_factory, dl, name="bobs")
        bob.load(theirs, complete=True)
        (configs / "bob.toml").write_text(config_text(bob, dl))
        poll_until(lambda: time.time() - created > 1.5, timeout=10, what="min_age 1s to pass")

        done = rtorrentd("orphans", "-c", str(configs))

        assert 0 == done.returncode, done.stderr
        roger = done.stdout.split("== roger ==")[1]
        assert "torrents of roger, bob list 3 files" in roger
        assert f"{dl}/two\\nlines.mkv" in roger  # one line per entry, whatever the name
        assert "listed by no loaded torrent of roger, bob; no other hard link" in roger
        assert "bobs" not in roger
        bob.kill()
        refused = rtorrentd("orphans", "-c", str(configs))
    assert 1 == refused.returncode
    roger = refused.stdout.split("== roger ==")[1]
    assert "orphan scan refused: bob cannot be read" in roger
    assert "nothing would be moved" in roger
    assert orphan.exists()


# --- the daemon -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_daemon_scans_after_a_poll_at_most_every_interval(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    orphan = old(dl / "old.mkv")
    created = os.lstat(orphan).st_ctime
    orphans = '[orphans]\nmin_age = "1s"\ninterval = "1h"\n[daemon]\ndry_run = true\n'
    config = parse_config(config_text(rtorrent, dl, orphans), str(tmp_path / "x.toml"))
    instance = Instance(
        "x", config, client_for(rtorrent), lifecycle=Lifecycle(), force_dry_run=False, base=0.2
    )
    poll_until(lambda: time.time() - created > 1.5, timeout=10, what="min_age 1s to pass")

    with capture_logs() as logs:
        await instance.poll()
        await instance.poll()  # within the interval: no second scan

    scanned = [e for e in logs if e["event"] == "orphans.scanned"]
    assert 1 == len(scanned) and 1 == scanned[0]["orphans"]
    (planned,) = [e for e in logs if e["event"] == "orphans.planned"]
    assert str(orphan) == planned["path"] and "no other hard link" in planned["why"]
    assert orphan.exists()  # a dry run moves nothing


def test_orphans_need_a_recycle_bin(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text(
        f'[rtorrent]\nurl = "scgi:///x.socket"\n[safety]\nallowed_roots = ["{tmp_path}"]\n'
        "[orphans]\n"
    )

    result = rtorrentd("check", "-c", str(config))

    assert 2 == result.returncode
    assert f"error: {config}:5: [orphans]: needs [trash]" in result.stderr
    assert "moved into the recycle bin, never unlinked" in result.stderr


@pytest.mark.anyio
async def test_the_daemon_moves_orphans_into_the_bin_and_they_can_be_put_back(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    orphan = old(dl / "sub" / "old.mkv")
    created = os.lstat(orphan).st_ctime
    config = parse_config(config_text(rtorrent, dl), str(tmp_path / "x.toml"))
    instance = Instance(
        "x", config, client_for(rtorrent), lifecycle=Lifecycle(), force_dry_run=False, base=0.2
    )
    poll_until(lambda: time.time() - created > 1.5, timeout=10, what="min_age 1s to pass")

    with capture_logs() as logs:
        await instance.poll()

    (moved,) = [e for e in logs if e["event"] == "orphans.moved"]
    assert str(orphan) == moved["path"] and not orphan.exists()
    (entry,) = trash.entries(str(dl.parent / "trash"))
    assert ("orphan", ("sub/old.mkv",)) == (
        entry.manifest.kind,
        tuple(item.path for item in entry.manifest.items),
    )
    trash_restore.restore_paths(entry)
    assert b"orphan data" == orphan.read_bytes()


def test_every_orphan_event_is_in_the_readme() -> None:
    code = "\n".join(
        (REPO / "rtorrentd" / module).read_text()
        for module in ("service/orphans.py", "service/instance.py")
    )
    logged = set(re.findall(r'"(orphans\.[a-z_]+)"', code))
    logged |= {f"orphans.{r}" for r in ("moved", "removed")}  # logged as f"orphans.{result}"
    table = (REPO / "README.md").read_text().split("## Logs", 1)[1].split("\n## ", 1)[0]
    assert logged and all(f"`{event}`" in table for event in logged), logged


# --- what rtorrent and rtorrentd own ----------------------------------------------------------


@pytest.mark.anyio
async def test_what_rtorrent_and_rtorrentd_own_is_never_an_orphan(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # The allowed root holds rtorrent's whole home: its session, its log (open),
    # its socket, and rtorrentd's state directory and configuration.
    home = rtorrent.root
    seeded = album(torrent_factory, rtorrent.download_dir, name="Album")
    rtorrent.load(seeded, complete=True)
    state = home / "state"
    old(state / "deleting" / "X.json")
    config = old(home / "rtorrentd.toml")
    orphan = old(home / "download" / "old.mkv")

    found, listing = await scan(
        [source(rtorrent)], [str(home)], SETTINGS, now=later(), owned=[str(state), str(config)]
    )

    assert "" == found.refused and listing is not None
    assert str(orphan) in paths(found)
    assert str(home / "rtorrent.rc") in paths(found)  # rtorrent's, but nobody says so
    mine = (rtorrent.session_dir, state, config, home / "rtorrent.log", rtorrent.socket_path)
    for path in paths(found):
        assert not any(path == str(p) or path.startswith(f"{p}/") for p in mine), path


@pytest.mark.anyio
async def test_files_a_torrent_lists_through_a_symlinked_directory_are_kept(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    alias = tmp_path / "alias"
    alias.symlink_to(dl)  # rtorrent knows the torrent as alias/Album
    rtorrent.load(seeded, complete=True, directory=alias)
    for entry in seeded.files:
        old(dl / "Album" / os.fsdecode(entry.path), b"")
    orphan = old(dl / "Album" / "extra.nfo")  # in the torrent's directory, not its file

    found, done = await scan_and_clean([source(rtorrent)], [dl], Bin(tmp_path / "bin"))

    assert {str(orphan)} == paths(found)
    assert {str(orphan): "moved"} == results(done)
    assert all((dl / "Album" / os.fsdecode(e.path)).exists() for e in seeded.files)


@pytest.mark.anyio
async def test_an_rtorrent_nobody_configured_refuses_the_scan(
    rtorrent: RtorrentProcess,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    # Another rtorrent downloads into our root: its torrents are unknown here.
    root = tmp_path / "shared"
    with make_rtorrent(root / "stranger", clean_exit=False) as stranger:
        theirs = album(torrent_factory, stranger.download_dir, name="theirs")
        stranger.load(theirs, complete=True)  # its files open, under our root
        for entry in theirs.files:
            old(stranger.download_dir / "theirs" / os.fsdecode(entry.path), b"")

        found, done = await scan_and_clean([source(rtorrent)], [root], Bin(tmp_path / "bin"))
        pid = stranger.pid

    assert f"an rtorrent that is not configured (pid {pid})" in found.refused
    assert [] == done
    assert all(
        (stranger.download_dir / "theirs" / os.fsdecode(e.path)).exists() for e in theirs.files
    )
