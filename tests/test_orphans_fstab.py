"""Orphan cleanup and mount points that only /etc/fstab or a systemd unit names: a
disk that is not mounted right now leaves an empty directory inside an allowed
root, which must stay for the next `mount` (with real rtorrents, 0.9.8 and 0.16,
and real tmpfs and ext4 filesystems mounted and unmounted).

Each test writes its own fstab and unit directory (`scan(..., fstab=PATH,
unit_dirs=[DIR])`); none reads the machine's.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import RtorrentProcess
from structlog.testing import capture_logs
from test_orphans import SETTINGS, Bin, config_text, later, old, paths, results, source
from test_sharing import _mount_missing, _unless_missing, mounted_disk

from rtorrentd.config.load import parse_config
from rtorrentd.deletion import mounts
from rtorrentd.deletion.mounts import (
    foreign_mount_sources,
    fstab_mount_points,
    unit_mount_point,
)
from rtorrentd.deletion.orphans import Cleaned, Scan, clean, scan
from rtorrentd.service import orphans as service

FSTAB_FORMS = b"""\
# /etc/fstab: static file system information.
#
# <file system>                            <mount point>   <type>  <options>  <dump> <pass>
UUID=6f1c2a3e-0000-4c1d-9f00-123456789abc  /               ext4    errors=remount-ro 0 1
  # an indented comment /not/a/mount/point
UUID=0a1b-2c3d  /srv/my\\040disk  vfat  defaults,nofail  0  2
LABEL=media\t/srv/tab\\011bed\text4\tnoauto,x-systemd.automount\t0\t2
/dev/sdc1 /srv/back\\134slash xfs defaults 0 0
PARTUUID=deadbeef-01 none swap sw 0 0
/swapfile swap swap defaults 0 0
/srv/library /srv/dl/library none bind 0 0
server:/export /srv/nfs nfs4 _netdev 0 0\r
tmpfs /srv/caf\xe9 tmpfs defaults 0 0

lonely-field
"""


def test_fstab_mount_points_are_its_second_fields_unescaped() -> None:
    points = fstab_mount_points(FSTAB_FORMS)

    assert [
        "/",
        "/srv/my disk",
        "/srv/tab\tbed",
        "/srv/back\\slash",
        "/srv/dl/library",
        "/srv/nfs",
        os.fsdecode(b"/srv/caf\xe9"),
    ] == points


def test_a_systemd_unit_s_name_is_its_mount_point_escaped() -> None:
    names = {
        "srv-my\\x2ddisk.mount": "/srv/my-disk",
        "mnt-tab\\x09bed-caf\\xe9.automount": os.fsdecode(b"/mnt/tab\tbed/caf\xe9"),
        "-.mount": "/",
        "srv-data.service": None,
        "srv-data.mount.d": None,
        "local-fs.target.wants": None,
    }

    assert names == {name: unit_mount_point(name) for name in names}


def test_the_sources_of_bind_mounts_in_every_namespace_are_found_here(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self" / "ns").mkdir(parents=True)
    (proc / "self" / "ns" / "mnt").symlink_to("mnt:[4026531832]")
    (proc / "self" / "mountinfo").write_bytes(
        b"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        b"40 27 8:17 / /srv/disk rw - ext4 /dev/sdb1 rw\n"
        b"41 27 8:17 /lib\\040rary /srv/dl/library rw - ext4 /dev/sdb1 rw\n"
    )
    for pid, namespace, table in (
        ("100", "mnt:[4026532177]", b"1 0 8:17 /lib\\040rary/films /downloads rw - ext4 x rw\n"),
        ("101", "mnt:[4026532177]", b"1 0 254:0 /never/read /x rw - ext4 x rw\n"),  # same
        (
            "102",
            "mnt:[4026532200]",
            b"1 0 254:0 /home/u/dl/volume /data rw - ext4 x rw\n"
            b"2 0 0:50 / /proc rw - proc proc rw\n3 0 9:1 /not/here /y rw - xfs x rw\n",
        ),
    ):
        (proc / pid / "ns").mkdir(parents=True)
        (proc / pid / "ns" / "mnt").symlink_to(namespace)
        (proc / pid / "mountinfo").write_bytes(table)
    (proc / "103").mkdir()  # gone, or not ours to read: skipped

    found = foreign_mount_sources(str(proc))

    assert {
        "/srv/disk/lib rary",  # our own bind mount's source
        "/srv/dl/library",  # and where it is mounted (a mount point: never walked anyway)
        "/srv/disk/lib rary/films",
        "/srv/dl/library/films",
        "/home/u/dl/volume",
    } == found


def unit_name(path: Path, kind: str) -> str:
    """systemd's own name for a unit of `kind` (mount, automount) at `path`."""
    done = subprocess.run(
        ["systemd-escape", "--path", f"--suffix={kind}", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


async def scan_and_clean(
    rt: RtorrentProcess,
    roots: Sequence[Path],
    bin_: Bin,
    fstab: Path,
    unit_dirs: Sequence[Path] = (),
) -> tuple[Scan, list[Cleaned]]:
    """A scan with `fstab` and `unit_dirs` as the tables, then the re-check and move."""
    found, listing = await scan(
        [source(rt)],
        [str(r) for r in roots],
        SETTINGS,
        now=later(),
        fstab=str(fstab),
        unit_dirs=[str(d) for d in unit_dirs],
    )
    if listing is None:
        return found, []
    return found, await clean(found, listing, SETTINGS, bin_, clock=later)


def empty_old_directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return old(path, b"")


@contextmanager
def disk(kind: str, scratch: Path, mount: Path) -> Iterator[Path]:
    """A real filesystem (tmpfs, or ext4 on a loop device) mounted at `mount` for
    the block: afterwards `mount` is what an unmounted disk leaves, an empty
    directory."""
    with mounted_disk(kind, scratch, mount):
        yield mount


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["tmpfs", "ext4"])
async def test_the_mount_point_of_a_disk_not_mounted_now_and_the_way_to_it_stay(
    rtorrent: RtorrentProcess, tmp_path: Path, kind: str
) -> None:
    _unless_missing(_mount_missing())
    dl = rtorrent.download_dir
    point = empty_old_directory(dl / "disks" / "d1")
    never_made = dl / "disks2" / "d2"  # its mount point was removed by hand once
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# <file system> <mount point> <type> <options> <dump> <pass>\n"
        f"UUID=0a1b2c3d-4e5f-6789-abcd-ef0123456789 {point} ext4 defaults,nofail 0 2\n"
        f"LABEL=d2\t{never_made}\text4\tnoauto\t0\t0\n"
    )
    bin_ = Bin(tmp_path / "bin")
    with disk(kind, tmp_path, point):
        on_disk = old(point / "film.mkv")  # on the disk: never walked
        found, _done = await scan_and_clean(rtorrent, [dl], bin_, fstab)
        assert str(on_disk) not in paths(found) and str(point) in found.skipped
    assert not on_disk.exists()  # the disk is gone: its mount point is empty
    old(point, b"")
    empty_old_directory(dl / "disks2")
    gone = empty_old_directory(dl / "empty")

    found, done = await scan_and_clean(rtorrent, [dl], bin_, fstab)

    assert {str(gone)} == paths(found)
    assert {str(gone): "removed"} == results(done)
    assert point.is_dir() and (dl / "disks2").is_dir()
    assert {str(point), str(dl / "disks2")} == set(found.mount_points)
    assert "" == found.caution


@pytest.mark.anyio
async def test_every_spelling_fstab_may_use_for_a_mount_point_keeps_it(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    spaced = empty_old_directory(dl / "my disk")
    tabbed = empty_old_directory(dl / "tab\tbed")
    via_link = empty_old_directory(dl / "through" / "alias")
    latin = empty_old_directory(Path(os.fsdecode(os.fsencode(dl) + b"/caf\xe9")))
    trailing = empty_old_directory(dl / "trailing")
    gone = empty_old_directory(dl / "no-fstab-line")
    alias = tmp_path / "alias-of-dl"
    alias.symlink_to(dl)
    root = os.fsencode(dl)
    fstab = tmp_path / "fstab"
    fstab.write_bytes(
        b"# comments, escapes, a swap line and sources of every kind\n"
        b"UUID=1 " + root + b"/my\\040disk ext4 defaults 0 2\n"
        b"LABEL=x\t" + root + b"/tab\\011bed\txfs\tdefaults\t0\t2\n"
        b"/dev/sdb1 " + os.fsencode(alias) + b"/through/alias ext4 defaults 0 2\n"
        b"PARTUUID=2 none swap sw 0 0\n"
        b"tmpfs " + root + b"/caf\xe9 tmpfs defaults 0 0\r\n"
        b"tmpfs " + root + b"//trailing/ tmpfs defaults 0 0\n"
        b"#UUID=3 " + os.fsencode(gone) + b" ext4 defaults 0 2\n"
    )

    found, done = await scan_and_clean(rtorrent, [dl], Bin(tmp_path / "bin"), fstab)

    assert {str(gone)} == paths(found)
    assert {str(gone): "removed"} == results(done)
    kept = (spaced, tabbed, via_link, latin, trailing)
    assert all(p.is_dir() for p in kept)
    assert {str(p) for p in kept} == set(found.mount_points)


@pytest.mark.anyio
async def test_the_mount_points_of_systemd_mount_and_automount_units_stay(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    mounted = empty_old_directory(dl / "by-unit" / "my-disk")
    automounted = empty_old_directory(dl / "caf\u00e9 auto")
    service_named = empty_old_directory(dl / "not-a-mount")
    units = tmp_path / "units"
    units.mkdir()
    (units / unit_name(mounted, "mount")).write_text(f"[Mount]\nWhere={mounted}\n")
    (units / unit_name(automounted, "automount")).write_text("[Automount]\n")
    (units / unit_name(service_named, "service")).write_text("[Service]\n")
    (units / "local-fs.target.wants").mkdir()

    found, done = await scan_and_clean(
        rtorrent, [dl], Bin(tmp_path / "bin"), tmp_path / "no-fstab", [tmp_path / "none", units]
    )

    assert {str(service_named): "removed"} == results(done)
    assert mounted.is_dir() and automounted.is_dir()
    assert {str(mounted), str(automounted)} == set(found.mount_points)
    assert "" == found.caution


@pytest.mark.anyio
@pytest.mark.usefixtures("mount_namespace")
async def test_an_empty_directory_another_mount_namespace_mounts_stays(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    # A container's volume (`docker run -v DL/volume:/downloads`): the bind mount is
    # in the container's namespace only; rmdir here would leave it on a dead
    # directory (writes there fail with ENOENT).
    dl = rtorrent.download_dir
    volume = empty_old_directory(dl / "volume")
    other = empty_old_directory(dl / "other")
    with container(volume, tmp_path / "container-view"):
        found, done = await scan_and_clean(
            rtorrent, [dl], Bin(tmp_path / "bin"), tmp_path / "no-fstab"
        )

    assert {str(other): "removed"} == results(done)
    assert volume.is_dir() and str(volume) in found.mount_points


@pytest.mark.anyio
@pytest.mark.usefixtures("mount_namespace")
async def test_an_orphan_directory_bind_mounted_elsewhere_after_the_scan_stays(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    volume = empty_old_directory(dl / "volume")
    no_fstab = str(tmp_path / "no-fstab")
    found, listing = await scan(
        [source(rtorrent)], [str(dl)], SETTINGS, now=later(), fstab=no_fstab, unit_dirs=()
    )
    assert {str(volume)} == paths(found) and listing is not None

    with container(volume, tmp_path / "container-view"):  # started meanwhile
        done = await clean(found, listing, SETTINGS, Bin(tmp_path / "bin"), clock=later)

    assert {str(volume): "kept: a mount has it as its root now (a container's volume?)"} == (
        results(done)
    )
    assert volume.is_dir()


@contextmanager
def container(volume: Path, view: Path) -> Iterator[None]:
    """A mount namespace of its own (a container) with `volume` bind-mounted at
    `view`, there for the block (it says when it is mounted: no sleeps)."""
    view.mkdir()
    script = f'mount --bind "{volume}" "{view}" && echo mounted && read line'
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            assert b"mounted\n" == process.stdout.readline()
            yield
        finally:
            process.stdin.close()
            process.wait(timeout=30)


@pytest.mark.anyio
async def test_an_unreadable_fstab_keeps_every_empty_directory_and_says_so(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    hollow = empty_old_directory(dl / "maybe-a-mount-point")
    orphan = old(dl / "old.mkv")
    unreadable = tmp_path / "fstab"
    unreadable.mkdir()  # read(2) fails: EISDIR

    found, done = await scan_and_clean(rtorrent, [dl], Bin(tmp_path / "bin"), unreadable)

    assert "" == found.refused  # the scan goes on, files are still moved
    assert {str(orphan)} == paths(found) and {str(orphan): "moved"} == results(done)
    assert hollow.is_dir() and str(hollow) in found.skipped
    assert f"{unreadable} cannot be read (Is a directory)" in found.caution
    assert "every empty directory is kept" in found.caution
    report = service.format_scan(found, SETTINGS)
    assert f"caution: {found.caution}" in report

    loop = tmp_path / "units"
    loop.symlink_to(loop)  # listing it fails (ELOOP)
    found, done = await scan_and_clean(
        rtorrent, [dl], Bin(tmp_path / "bin2"), tmp_path / "no-fstab-here", [loop]
    )

    assert f"{loop} cannot be listed" in found.caution
    assert hollow.is_dir() and [] == done

    found, done = await scan_and_clean(
        rtorrent, [dl], Bin(tmp_path / "bin3"), tmp_path / "no-fstab-here", [tmp_path / "no"]
    )

    assert "" == found.caution  # no table at all (a container): nothing is planned
    assert {str(hollow): "removed"} == results(done)


@pytest.mark.anyio
async def test_the_daemon_logs_and_the_command_shows_what_fstab_kept(
    rtorrent: RtorrentProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dl = rtorrent.download_dir
    point = empty_old_directory(dl / "d1")
    fstab = tmp_path / "fstab"
    fstab.write_text(f"UUID=1 {point} ext4 defaults,nofail 0 2\n")
    monkeypatch.setattr(mounts, "FSTAB", str(fstab))
    monkeypatch.setattr(mounts, "UNIT_DIRS", ())
    config = parse_config(config_text(rtorrent, dl), str(tmp_path / "x.toml"))
    sources = [source(rtorrent)]

    with capture_logs() as logs:
        found, _ = await service.scan_and_clean(sources, config, SETTINGS, now=later(), move=None)
        monkeypatch.setattr(mounts, "FSTAB", str(tmp_path))  # a directory: unreadable
        await service.scan_and_clean(sources, config, SETTINGS, now=later(), move=None)

    (skipped,) = [e for e in logs if e["event"] == "orphans.skipped"]
    assert str(point) == skipped["path"] and "fstab" in skipped["why"]
    (caution,) = [e for e in logs if e["event"] == "orphans.caution"]
    assert "cannot be read" in caution["reason"]
    report = service.format_scan(found, SETTINGS)
    assert f"kept {point}: a mount point fstab or a systemd unit names" in report
