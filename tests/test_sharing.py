"""Who else uses the files of a torrent being deleted: the sharing check reads only
the torrents that could, and none that could is skipped (issues 11 and 15).

Unit tests drive `sharing.SharingIndex` and `sharing.LinkScanner` on a tree;
integration tests run whole polls against real rtorrents (0.9.8 and 0.16), with
cross-seed's link mode, symlinked directories, hard links, a torrent loaded while
the poll runs, and a second rtorrent instance on the same disk.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from flow import LABEL_DOOMED, album, client_for, config_for, contents, one_result, state
from harness import RtorrentProcess, TorrentFactory, TorrentFile, random_bytes
from structlog.testing import capture_logs
from trees import Canaries

from rtorrentd.config.model import Config
from rtorrentd.deletion import executor, spelling
from rtorrentd.deletion.planning import plan_deletion
from rtorrentd.deletion.results import Result
from rtorrentd.deletion.sharing import Holder, LinkScanner, SharingIndex
from rtorrentd.deletion.spelling import Spellings
from rtorrentd.engine import plan as engine
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.plan import Step
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.service.poll import PollResult, poll_once, rechecker
from rtorrentd.torrent import FileEntry, Torrent

CANARY_BYTES = b"canary: must survive"
HASHES = iter(f"{i:040X}" for i in range(1, 1000))


def holder(path: Path | str, directory: Path | str | None = None, source: str = "") -> Holder:
    """A torrent whose data is at `path`: multi-file unless `directory` is its parent."""
    text = str(path)
    return Holder(source, next(HASHES), os.path.basename(text), str(directory or text), text)


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- unit: which torrents are candidates ------------------------------------------


def test_candidates_are_exactly_the_torrents_that_could_list_our_files(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    write(dl / "Movie/a.bin")
    write(dl / "Other/b.bin")
    write(dl / "single.bin")
    (tmp_path / "real/sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/movie-dir").symlink_to(dl / "Movie")  # d.directory is a link
    (tmp_path / "dotdot").symlink_to(tmp_path / "real/sub")
    (dl / "Movie-link").symlink_to(dl / "Movie")
    write(tmp_path / "cross/Movie.links/keep.txt")
    (tmp_path / "cross/Movie.links/a.bin").symlink_to(dl / "Movie/a.bin")  # link mode
    ours = holder(dl / "Movie")
    could = {
        "same data path": holder(dl / "Movie"),
        "a file inside ours": holder(dl / "Movie/a.bin", dl / "Movie"),
        "a directory holding ours": holder(dl),
        "through a symlinked directory": holder(tmp_path / "elsewhere/movie-dir"),
        "through '..' after a link": holder(f"{tmp_path}/dotdot/../../dl/Movie"),
        "data holding a symlink": holder(tmp_path / "cross/Movie.links"),
        "data not on disk": holder(dl / "Gone"),
        "a name rtorrent mangled": holder(dl / "caf?.bin", dl),
        "a relative directory": holder("./x.bin", "."),
        "a directory changed under its base path": holder(dl / "Other", dl / "Movie"),
        "written with '//', '.' and a trailing '/'": holder(f"{dl}/./Movie//"),
        "a symlinked directory written with a trailing '/'": holder(
            f"{tmp_path}/elsewhere/movie-dir/"
        ),
        "a link to ours in the same directory": holder(dl / "Movie-link", dl),
    }
    cannot = [holder(dl / "Other"), holder(dl / "single.bin", dl), holder(tmp_path / "real")]
    cannot += [holder(f"{dl}//Other/./"), holder(dl / "movie")]  # another file on ext4/tmpfs
    write(dl / "movie/a.bin")

    index = SharingIndex([ours, *could.values(), *cannot], LinkScanner())
    found = index.candidates([str(dl / "Movie")], ours.key)

    assert {h.key: name for name, h in could.items()} == {
        h.key: name for name, h in could.items() if h in found
    }
    assert not [h for h in cannot if h in found]
    assert ours not in found


def test_every_torrent_is_a_candidate_when_our_data_cannot_be_examined(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere/x.bin")
    others = [holder(tmp_path / "elsewhere/x.bin", tmp_path / "elsewhere"), holder(tmp_path)]
    index = SharingIndex(others, LinkScanner())

    assert others == index.candidates([str(tmp_path / "missing/Movie")], ("", "A" * 40))


def test_our_symlinked_files_bring_in_the_torrents_at_their_targets(tmp_path: Path) -> None:
    original = holder(write(tmp_path / "dl/Movie/a.bin").parent)
    (tmp_path / "links").mkdir()
    index = SharingIndex([original], LinkScanner())

    assert [] == index.candidates([str(tmp_path / "links")], ("", "A" * 40))
    found = index.candidates([str(tmp_path / "links"), str(tmp_path / "dl/Movie/a.bin")], ("", ""))
    assert [original] == found


def test_a_torrent_erased_by_us_is_no_candidate_any_more(tmp_path: Path) -> None:
    first = holder(write(tmp_path / "Movie/a.bin").parent)
    linked = holder(tmp_path / "links")
    (tmp_path / "links").mkdir()
    (tmp_path / "links/a.bin").symlink_to(tmp_path / "Movie/a.bin")
    index = SharingIndex([first, linked], LinkScanner())
    index.forget(first.key)
    index.forget(linked.key)

    assert [] == index.candidates([str(tmp_path / "Movie")], ("", "A" * 40))


# --- unit: the symlink scan and its cache ---------------------------------------------


def test_the_link_scan_lists_an_unchanged_directory_once_and_sees_a_new_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "Pack"
    write(data / "a.bin")
    write(data / "sub/deep/b.bin")
    old = time.time() - 60  # older than the racy window: cacheable
    for directory in (data, data / "sub", data / "sub/deep"):
        os.utime(directory, (old, old))
    listed: list[str] = []
    real_scandir = os.scandir

    def counting(path: str) -> object:
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    scanner = LinkScanner()

    assert scanner.holds_link(str(data)) is False
    assert 3 == len(listed)
    assert scanner.holds_link(str(data)) is False
    assert 3 == len(listed)  # nothing changed: nothing listed again
    (data / "sub/deep/c.bin").symlink_to(tmp_path / "elsewhere.bin")
    assert scanner.holds_link(str(data)) is True  # the deep directory's mtime moved
    assert str(data / "sub/deep") == listed[-1]


def test_a_directory_changed_within_its_timestamp_granularity_is_listed_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "Pack/a.bin")  # just written: its mtime is now
    listed: list[str] = []
    real_scandir = os.scandir

    def counting(path: str) -> object:
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    scanner = LinkScanner()

    assert scanner.holds_link(str(tmp_path / "Pack")) is False
    assert scanner.holds_link(str(tmp_path / "Pack")) is False
    assert 2 == len(listed)


def test_the_link_scan_does_not_follow_links_and_flags_them(tmp_path: Path) -> None:
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop/self").symlink_to(tmp_path / "loop")
    write(tmp_path / "file.bin")
    (tmp_path / "linked.bin").symlink_to(tmp_path / "file.bin")
    scanner = LinkScanner()

    assert (True, True, False, None) == (
        scanner.holds_link(str(tmp_path / "loop")),
        scanner.holds_link(str(tmp_path / "linked.bin")),
        scanner.holds_link(str(tmp_path / "file.bin")),
        scanner.holds_link(str(tmp_path / "missing")),
    )


# --- unit: which directories are listed to tell a spelling ------------------------------


def _mount_missing() -> str:
    tools = ("mkfs.ext4", "losetup", "mount", "umount")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)}"
    return "" if os.geteuid() == 0 else "needs root to mount a filesystem"


RUN = functools.partial(subprocess.run, check=True, capture_output=True, timeout=60)


def _unless_missing(why: str) -> None:
    """Skip a test whose filesystem cannot be mounted here; never in CI, which runs
    as root with the packages `make test` installs: there it fails."""
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@contextmanager
def _mounted(command: Sequence[str], mount: Path) -> Iterator[Path]:
    """`command` + `mount` mounts a filesystem there; unmounted afterwards."""
    RUN([*command, str(mount)])
    try:
        yield mount
    finally:
        RUN(["umount", str(mount)])


@contextmanager
def _loop_image(image: Path, size: int, mkfs: Sequence[str]) -> Iterator[str]:
    """A fresh image of `size` bytes formatted by `mkfs`, on a loop device (its
    path); detached afterwards."""
    with open(image, "wb") as f:
        f.truncate(size)
    RUN([*mkfs, str(image)])
    loop = RUN(["losetup", "--find", "--show", str(image)], text=True).stdout.strip()
    try:
        yield loop
    finally:
        RUN(["losetup", "--detach", loop])


@contextmanager
def mounted_disk(kind: str, scratch: Path, mount: Path) -> Iterator[Path]:
    """A fresh `kind` filesystem ("tmpfs", or "ext4": an image in `scratch` on a
    loop device) mounted at `mount` for the block, then unmounted."""
    if kind == "tmpfs":
        with _mounted(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs"], mount):
            yield mount
        return
    with (
        _loop_image(scratch / f"{kind}.img", 16 * 1024 * 1024, ["mkfs.ext4", "-q"]) as loop,
        _mounted(["mount", loop], mount),
    ):
        yield mount


@pytest.fixture(params=["tmpfs", "ext4"])
def exact_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A fresh filesystem whose lookups compare names byte for byte: a tmpfs, or an
    ext4 image on a loop device (no directory of it has the casefold attribute);
    unmounted afterwards."""
    _unless_missing(_mount_missing())
    mount = tmp_path / "mnt"
    mount.mkdir()
    with mounted_disk(request.param, tmp_path, mount) as path:
        yield path


def counting_listdir(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every directory `spelling` lists from now on."""
    listed: list[str] = []
    real_listdir = os.listdir

    def counting(path: str) -> list[str]:
        listed.append(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", counting)
    return listed


def test_lookups_are_exact_where_the_kernel_compares_names_byte_for_byte(
    exact_fs: Path, exfat: Path
) -> None:
    (exact_fs / "dl").mkdir()
    (exfat / "dl").mkdir()

    assert spelling.exact_lookups(str(exact_fs / "dl"))
    assert not spelling.exact_lookups(str(exfat / "dl"))  # FUSE: listed, whatever it is
    assert not spelling.exact_lookups(str(exact_fs / "missing"))
    assert not spelling.exact_lookups("/proc")  # no filesystem of the list


def test_a_casefolded_directory_is_listed(exact_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(exact_fs / "dl/Movie/a.bin")
    real_ioctl = fcntl.ioctl

    def casefolded(fd: int, request: int, arg: bytearray) -> object:
        # What ext4 or tmpfs answer for a directory with +F (this kernel may lack it).
        real_ioctl(fd, request, arg)
        arg[:] = (int.from_bytes(arg, sys.byteorder) | 0x40000000).to_bytes(4, sys.byteorder)
        return 0

    monkeypatch.setattr(fcntl, "ioctl", casefolded)
    listed = counting_listdir(monkeypatch)

    path = str(exact_fs / "dl/Movie/a.bin")
    assert not spelling.exact_lookups(str(exact_fs / "dl"))
    assert path == Spellings().canonical(path)
    assert {str(exact_fs / "dl"), str(exact_fs / "dl/Movie")} <= set(listed)


def test_where_lookups_are_exact_a_flat_directory_is_never_listed(
    exact_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dl = exact_fs / "dl"
    torrents = [holder(write(dl / f"t{i}.bin"), dl) for i in range(50)]
    pack, other = holder(write(dl / "Pack/a.bin").parent), holder(write(dl / "pack/a.bin").parent)
    (dl / "link.bin").symlink_to(dl / "t0.bin")
    linked = holder(dl / "link.bin", dl)  # holds a link: a candidate of every look-up
    listed = counting_listdir(monkeypatch)

    index = SharingIndex([*torrents, pack, other, linked], LinkScanner())

    assert [torrents[0], linked] == index.candidates([str(dl / "t0.bin")], ("", ""), Spellings())
    assert [linked] == index.candidates([str(dl / "Pack")], pack.key)  # "pack": another one
    assert [other, linked] == index.candidates([str(dl / "pack")], ("", ""))
    assert [] == listed


# --- integration ----------------------------------------------------------------------


class CountingClient(RtorrentClient):
    """Records whose file lists are read, and each snapshot."""

    def __init__(self, url: str) -> None:
        super().__init__(client_for_url(url).transport)
        self.files_read: list[str] = []
        self.snapshots = 0

    async def all_files(self, hashes: Sequence[str]) -> dict[str, tuple[FileEntry, ...]]:
        self.files_read += hashes
        return await super().all_files(hashes)

    async def snapshot(
        self, names: Iterable[str] = (), *, identity: bool = True
    ) -> tuple[Torrent, ...]:
        self.snapshots += 1
        return await super().snapshot(names, identity=identity)


def client_for_url(url: str) -> RtorrentClient:
    from rtorrentd.rtorrent.transport import open_transport

    return RtorrentClient(open_transport(url))


def with_others(config: Config, *urls: str) -> Config:
    return dataclasses.replace(
        config, safety=dataclasses.replace(config.safety, other_rtorrents=tuple(urls))
    )


async def run_poll(client: RtorrentClient, config: Config) -> PollResult:
    return await poll_once(client, config, Memory.empty(), dry_run=False, now=time.time())


def link_tree(source: TorrentFile, links: Path) -> None:
    """cross-seed's link mode: the same names, each file a symlink to ours."""
    for entry in source.files:
        rel = os.fsdecode(entry.path)
        (links / rel).parent.mkdir(parents=True, exist_ok=True)
        (links / rel).symlink_to(source.payload_path / rel)


def same_data(factory: TorrentFactory, source: TorrentFile, dest: Path) -> TorrentFile:
    """Another info-hash (private flag) for the same files, as a cross-seed."""
    files: dict[str | bytes, bytes] = {
        os.fsdecode(e.path): (source.payload_path / os.fsdecode(e.path)).read_bytes()
        for e in source.files
    }
    return factory(source.name, files, dest_dir=dest, private=True, write_payload=False)


@pytest.mark.anyio
@pytest.mark.integration
async def test_link_mode_and_symlinked_directories_keep_our_files_and_nothing_else_is_read(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    linked_dir = tmp_path / "cross-links"
    link_tree(doomed, linked_dir / "album")
    cross = same_data(torrent_factory, doomed, linked_dir)
    cross_hash = rtorrent.load(cross, complete=True)
    (tmp_path / "via").symlink_to(dl)  # another torrent's d.directory is a link to ours
    via_hash = rtorrent.load(same_data(torrent_factory, doomed, tmp_path / "via"), complete=True)
    unrelated = [rtorrent.load(album(torrent_factory, dl, name="spare", seed=5), complete=True)]
    unrelated += [
        rtorrent.load(torrent_factory(f"u{i}.bin", b"u" * (100 + i), dest_dir=dl), complete=True)
        for i in range(4)
    ]
    client = CountingClient(rtorrent.scgi_url)
    canaries = Canaries()
    canaries.keep(contents(doomed))
    config = config_for(rtorrent, [dl])

    with capture_logs() as logs:
        result = await run_poll(client, config)

    canaries.check()
    assert doomed_hash not in state(rtorrent)
    kept = {str(dl / "album" / os.fsdecode(e.path)) for e in doomed.files}
    assert (Result.DONE, kept) == (result.results[0].result, set(result.results[0].kept_shared))
    assert kept == set(one_result(logs, doomed_hash)["kept_shared"])
    assert {cross_hash, via_hash} == set(client.files_read)  # and nothing else
    assert {cross_hash, via_hash, *unrelated} == set(state(rtorrent))
    assert 2 == client.snapshots  # the plan's, and the sharing check's: once per poll


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_hard_link_in_another_torrent_is_not_ours_to_keep(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    library = tmp_path / "library"
    library.mkdir()
    os.link(doomed.payload_path / "a.bin", library / "a.bin")
    linked = torrent_factory(
        "a.bin", (doomed.payload_path / "a.bin").read_bytes(), dest_dir=library, write_payload=False
    )
    linked_hash = rtorrent.load(linked, complete=True)
    canaries = Canaries()
    canaries.keep(contents(linked))

    with capture_logs() as logs:
        await run_poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    canaries.check()
    assert not doomed.payload_path.exists()
    assert {linked_hash: (1, 1)} == state(rtorrent)
    assert 1 == (library / "a.bin").stat().st_nlink
    assert doomed.size - 30_000 == one_result(logs, doomed_hash)["freed_bytes"]


@pytest.mark.anyio
@pytest.mark.integration
async def test_in_one_flat_directory_a_symlinked_neighbour_keeps_our_file_a_hard_link_does_not(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # Single-file torrents side by side, as most download directories hold them: the
    # index takes one lstat each; a neighbour whose data path is itself a symlink to
    # our file (cross-seed's link mode) must keep it, a hard link must not.
    dl = rtorrent.download_dir
    data = {name: random_bytes(40_000 + i) for i, name in enumerate(("kept.bin", "gone.bin"))}
    doomed = {n: torrent_factory(n, b, dest_dir=dl) for n, b in data.items()}
    hashes = {
        n: rtorrent.load(t, commands=(LABEL_DOOMED,), complete=True) for n, t in doomed.items()
    }
    (dl / "kept-link.bin").symlink_to(dl / "kept.bin")
    os.link(dl / "gone.bin", dl / "gone-link.bin")
    neighbours = [
        rtorrent.load(torrent_factory(n, data[d], dest_dir=dl, write_payload=False), complete=True)
        for n, d in (("kept-link.bin", "kept.bin"), ("gone-link.bin", "gone.bin"))
    ]
    bystanders = [
        rtorrent.load(torrent_factory(f"u{i}.bin", b"u" * (100 + i), dest_dir=dl), complete=True)
        for i in range(6)
    ]
    canaries = Canaries()
    canaries.keep({dl / "kept.bin": data["kept.bin"], dl / "gone-link.bin": data["gone.bin"]})
    client = CountingClient(rtorrent.scgi_url)

    with capture_logs() as logs:
        await run_poll(client, config_for(rtorrent, [dl]))

    canaries.check()
    assert [str(dl / "kept.bin")] == one_result(logs, hashes["kept.bin"])["kept_shared"]
    assert not one_result(logs, hashes["gone.bin"]).get("kept_shared")
    assert not (dl / "gone.bin").exists()
    assert {*neighbours, *bystanders} == set(state(rtorrent))
    assert neighbours[0] in client.files_read
    assert not set(bystanders) & set(client.files_read)


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_torrent_loaded_after_the_snapshot_is_caught_before_the_next_deletion(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    first = album(torrent_factory, dl, name="first")
    second = album(torrent_factory, dl, name="second", seed=10)
    for torrent in (first, second):
        rtorrent.load(torrent, commands=(LABEL_DOOMED,), complete=True)
    link_tree(second, tmp_path / "links/second")  # link mode: found only if indexed
    late = same_data(torrent_factory, second, tmp_path / "links")
    client, config = client_for(rtorrent), config_for(rtorrent, [dl])
    now = time.time()
    torrents = await client.snapshot(engine.fetch_names(config))
    memory = remember(Memory.empty(), torrents, now)
    plan = engine.plan(torrents, config, now, memory)
    assert [first.info_hash, second.info_hash] == sorted(
        (s.hash for s in plan.steps), key=[first.info_hash, second.info_hash].index
    )
    recheck = rechecker(config, now, memory)

    def still_matches(fresh: Torrent, step: Step) -> bool:
        # The first deletion read the loaded torrents; this one comes in after it.
        if step.hash == second.info_hash and late.info_hash not in rtorrent.hashes():
            rtorrent.load(late, complete=True)
        return recheck(fresh, step)

    canaries = Canaries()
    canaries.keep(contents(second))
    with capture_logs() as logs:
        results = await executor.apply(
            plan,
            client,
            allowed_roots=config.safety.allowed_roots,
            names=engine.fetch_names(config),
            still_matches=still_matches,
            dry_run=False,
        )

    assert [Result.DONE, Result.DONE] == [r.result for r in results]
    assert not first.payload_path.exists()
    canaries.check()
    assert {late.info_hash: (1, 1)} == state(rtorrent)
    kept = {str(second.payload_path / os.fsdecode(e.path)) for e in second.files}
    assert kept == set(one_result(logs, second.info_hash)["kept_shared"])


class LoadingOnClose(RtorrentClient):
    """Loads `late` into rtorrent right after `d.close` of `victim`: after the
    deletion's preflight plan, before the plan it carries out. Counts the
    "loaded since" scans."""

    def __init__(self, rtorrent: RtorrentProcess, victim: str, late: TorrentFile) -> None:
        super().__init__(client_for(rtorrent).transport)
        self.rtorrent, self.victim, self.late = rtorrent, victim, late
        self.scans = 0

    async def close(self, info_hash: str) -> None:
        await super().close(info_hash)
        if info_hash == self.victim:
            self.rtorrent.load(self.late, complete=True)

    async def loaded_since(
        self, since: int, names: Iterable[str] = (), *, identity: bool = True
    ) -> tuple[Torrent, ...]:
        self.scans += 1
        return await super().loaded_since(since, names, identity=identity)


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_torrent_loaded_while_the_victim_closes_is_caught_before_the_unlink(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # The preflight plan before d.stop/d.close reads no "loaded since" (issue 15: a
    # scan of rtorrent's whole list each); the plan carried out after the close does.
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl, name="doomed")
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    link_tree(doomed, tmp_path / "links/doomed")  # link mode: found only if indexed
    late = same_data(torrent_factory, doomed, tmp_path / "links")
    client = LoadingOnClose(rtorrent, doomed_hash, late)
    canaries = Canaries()
    canaries.keep(contents(doomed))

    with capture_logs() as logs:
        result = await run_poll(client, config_for(rtorrent, [dl]))

    assert [Result.DONE] == [r.result for r in result.results]
    canaries.check()
    assert {late.info_hash: (1, 1)} == state(rtorrent)
    kept = {str(doomed.payload_path / os.fsdecode(e.path)) for e in doomed.files}
    assert kept == set(one_result(logs, doomed_hash)["kept_shared"])
    assert 1 == client.scans  # one per deletion, not one per plan


# --- other rtorrent instances on the same disk (issue 11) ---------------------------


@pytest.mark.anyio
@pytest.mark.integration
async def test_files_another_rtorrent_seeds_or_links_to_are_kept(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    ours, other = rtorrent_pair
    dl = ours.download_dir
    doomed = album(torrent_factory, dl)
    single = torrent_factory("single.bin", b"s" * 5_000, dest_dir=dl)
    doomed_hash = ours.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    single_hash = ours.load(single, commands=(LABEL_DOOMED,), complete=True)
    seeded = other.load(same_data(torrent_factory, doomed, dl), complete=True)  # same files
    (tmp_path / "links").mkdir()
    (tmp_path / "links/single.bin").symlink_to(dl / "single.bin")  # link mode, one file
    linked = other.load(
        torrent_factory(
            "single.bin",
            b"s" * 5_000,
            dest_dir=tmp_path / "links",
            private=True,
            write_payload=False,
        ),
        complete=True,
    )
    spare = other.load(torrent_factory("spare.bin", b"p" * 700, dest_dir=other.download_dir))
    other_client = CountingClient(other.scgi_url)
    canaries = Canaries()
    canaries.keep({**contents(doomed), **contents(single)})
    config = with_others(config_for(ours, [dl]), other.scgi_url)

    with capture_logs() as logs:
        await poll_once(
            client_for(ours),
            config,
            Memory.empty(),
            dry_run=False,
            now=time.time(),
            others=[(other.scgi_url, other_client)],
        )

    canaries.check()
    assert {} == state(ours)  # both erased, their files kept for the other rtorrent
    assert {seeded, linked, spare} == set(state(other))
    kept = {str(dl / "album" / os.fsdecode(e.path)) for e in doomed.files}
    assert kept == set(one_result(logs, doomed_hash)["kept_shared"])
    assert [str(dl / "single.bin")] == one_result(logs, single_hash)["kept_shared"]
    assert spare not in other_client.files_read


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_hard_link_in_another_rtorrents_data_keeps_its_name_and_ours_goes(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess], torrent_factory: TorrentFactory
) -> None:
    ours, other = rtorrent_pair
    dl = ours.download_dir
    doomed = album(torrent_factory, dl)
    doomed_hash = ours.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    os.link(doomed.payload_path / "a.bin", other.download_dir / "a.bin")
    theirs = torrent_factory(
        "a.bin",
        (doomed.payload_path / "a.bin").read_bytes(),
        dest_dir=other.download_dir,
        write_payload=False,
    )
    theirs_hash = other.load(theirs, complete=True)
    canaries = Canaries()
    canaries.keep(contents(theirs))
    config = with_others(config_for(ours, [dl]), other.scgi_url)

    with capture_logs() as logs:
        await run_poll(client_for(ours), config)

    canaries.check()
    assert not doomed.payload_path.exists()
    assert {theirs_hash: (1, 1)} == state(other)
    assert (doomed.size - 30_000, None) == (
        one_result(logs, doomed_hash)["freed_bytes"],
        one_result(logs, doomed_hash)["kept_shared"],
    )


@pytest.mark.anyio
@pytest.mark.integration
async def test_an_unreachable_other_rtorrent_refuses_deletions_but_not_stops(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    stopped = album(torrent_factory, dl, name="stopped", seed=20)
    stopped_hash = rtorrent.load(stopped, commands=('d.custom1.set="stopme"',), complete=True)
    gone = f"scgi://{tmp_path / 'nobody.sock'}"
    rules = [("doomed", 'label == "doomed"', "delete"), ("s", 'label == "stopme"', "stop")]
    config = with_others(config_for(rtorrent, [dl], rules), gone)
    canaries = Canaries()
    canaries.keep({**contents(doomed), **contents(stopped)})

    with capture_logs() as logs:
        await run_poll(client_for(rtorrent), config)

    canaries.check()
    event = one_result(logs, doomed_hash)
    assert ("action.refused", 0) == (event["event"], event["freed_bytes"])
    assert f"the other rtorrent {gone}" in event["reason"]
    assert "cannot be read" in event["reason"]
    assert {doomed_hash: (1, 1), stopped_hash: (0, 0)} == state(rtorrent)


# --- a real case-insensitive filesystem: exFAT through FUSE ----------------------------


def _exfat_missing() -> str:
    tools = ("mkfs.exfat", "mount.exfat-fuse", "losetup", "umount")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (Debian: exfat-fuse exfatprogs)"
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        return "needs root and /dev/fuse to mount exFAT"
    return ""


@pytest.fixture
def exfat(tmp_path: Path) -> Iterator[Path]:
    """A fresh exFAT filesystem mounted through FUSE (case-insensitive, like the USB
    disks and NAS shares that carry downloads), unmounted afterwards."""
    _unless_missing(_exfat_missing())
    mount = tmp_path / "ex"
    mount.mkdir()
    with (
        _loop_image(tmp_path / "exfat.img", 64 * 1024 * 1024, ["mkfs.exfat"]) as loop,
        _mounted(["mount.exfat-fuse", loop], mount),
    ):
        yield mount


def test_exfat_is_case_insensitive_and_numbers_each_spelling_apart(exfat: Path) -> None:
    # The premise of the tests below, measured: identities by stat alone would miss it.
    write(exfat / "dl/Movie/a.bin", CANARY_BYTES)
    one, other = exfat / "dl/Movie/a.bin", exfat / "DL/movie/A.BIN"

    assert CANARY_BYTES == other.read_bytes()
    assert os.stat(one).st_ino != os.stat(other).st_ino
    assert str(one) == Spellings().canonical(str(other))
    assert Spellings().key(str(one)) == Spellings().key(str(other))


def test_on_exfat_another_spelling_of_our_file_is_kept(exfat: Path) -> None:
    movie = exfat / "dl/Movie"
    files = [FileEntry("a.bin", len(CANARY_BYTES)), FileEntry("b.bin", 3)]
    write(movie / "a.bin", CANARY_BYTES)
    write(movie / "b.bin", b"bbb")
    shared = [str(exfat / "DL/movie/A.BIN"), str(exfat / "dl/Other/b.bin")]

    deletion = plan_deletion(str(movie), files, [str(exfat / "dl")], shared, multi_file=True)

    assert (str(movie / "a.bin"),) == deletion.kept_shared
    assert (str(movie / "b.bin"),) == deletion.to_unlink


def test_on_exfat_a_torrent_under_another_spelling_is_a_candidate(exfat: Path) -> None:
    write(exfat / "dl/Movie/a.bin")
    write(exfat / "dl/Other/a.bin")
    ours, spelled = holder(exfat / "dl/Movie"), holder(exfat / "DL/MOVIE")
    unrelated = holder(exfat / "dl/Other")
    index = SharingIndex([ours, spelled, unrelated], LinkScanner())

    assert [spelled] == index.candidates([str(exfat / "dl/Movie")], ours.key)


def test_on_exfat_a_rename_to_another_spelling_changes_no_timestamp_of_its_directory(
    exfat: Path,
) -> None:
    # Why no listing is kept between look-up rounds: nothing would tell it stale.
    write(exfat / "dl/Movie/a.bin")
    old = time.time() - 60
    os.utime(exfat / "dl", (old, old))
    before = os.stat(exfat / "dl")

    (exfat / "dl/Movie").rename(exfat / "dl/MOVIE")

    after = os.stat(exfat / "dl")
    assert (before.st_mtime_ns, before.st_ctime_ns) == (after.st_mtime_ns, after.st_ctime_ns)
    assert ["MOVIE"] == os.listdir(exfat / "dl")


def test_on_exfat_a_rename_to_another_spelling_between_look_ups_is_seen(exfat: Path) -> None:
    write(exfat / "dl/Movie/a.bin")
    write(exfat / "dl/Other/a.bin")
    ours, spelled = holder(exfat / "dl/Movie"), holder(exfat / "DL/MOVIE")
    index = SharingIndex([ours, spelled, holder(exfat / "dl/Other")], LinkScanner())
    assert [spelled] == index.candidates([str(exfat / "dl/Movie")], ours.key, Spellings())

    (exfat / "dl/Movie").rename(exfat / "dl/movie")  # the index has "Movie"'s identity

    # Each round lists afresh: our path as written ("Movie") is spelled as stored now.
    assert str(exfat / "dl/movie") == Spellings().canonical(str(exfat / "dl/Movie"))
    assert [spelled] == index.candidates([str(exfat / "dl/Movie")], ours.key, Spellings())
    assert [spelled] == index.candidates([str(exfat / "DL/MOVIE")], ours.key, Spellings())


def test_on_exfat_data_recreated_under_another_spelling_between_plans_is_kept(
    exfat: Path,
) -> None:
    movie = exfat / "dl/Movie"
    files = [FileEntry("a.bin", len(CANARY_BYTES))]
    write(movie / "a.bin", CANARY_BYTES)
    shared = [str(exfat / "dl/MOVIE/A.BIN")]
    first = plan_deletion(str(movie), files, [str(exfat / "dl")], shared, multi_file=True)
    assert (str(movie / "a.bin"),) == first.kept_shared

    shutil.rmtree(movie)
    write(exfat / "dl/mOvIe/A.bin", CANARY_BYTES)  # recreated, spelled otherwise

    again = plan_deletion(str(movie), files, [str(exfat / "dl")], shared, multi_file=True)
    assert (str(movie / "a.bin"),) == again.kept_shared
    assert () == again.to_unlink


@pytest.mark.anyio
@pytest.mark.integration
async def test_on_exfat_a_cross_seed_spelled_otherwise_keeps_our_files(
    exfat: Path, rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    # exfat first: it is unmounted after rtorrent, which holds its files open, is gone.
    dl = exfat / "dl"
    doomed = album(torrent_factory, dl)
    doomed_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    # The same files through another spelling of the directory: rtorrent finds them.
    cross_hash = rtorrent.load(same_data(torrent_factory, doomed, exfat / "DL"), complete=True)
    canaries = Canaries()
    canaries.keep(contents(doomed))

    with capture_logs() as logs:
        await run_poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    canaries.check()
    assert {cross_hash: (1, 1)} == state(rtorrent)
    kept = {str(dl / "album" / os.fsdecode(e.path)) for e in doomed.files}
    assert kept == set(one_result(logs, doomed_hash)["kept_shared"])


@pytest.mark.anyio
@pytest.mark.integration
async def test_an_unlisted_rtorrent_using_our_allowed_root_is_warned_about(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess], torrent_factory: TorrentFactory
) -> None:
    ours, other = rtorrent_pair
    dl = ours.download_dir
    other.load(torrent_factory("theirs.bin", b"t" * 50_000, dest_dir=dl), complete=True)
    first = album(torrent_factory, dl, name="first")
    second = album(torrent_factory, dl, name="second", seed=10)
    ours.load(first, commands=(LABEL_DOOMED,), complete=True)
    config = config_for(ours, [dl])

    with capture_logs() as logs:
        await run_poll(client_for(ours), config)

    warned = [e for e in logs if e["event"] == "sharing.unlisted_rtorrent"]
    assert [(other.pid, str(dl / "theirs.bin"))] == [(e["pid"], e["path"]) for e in warned]
    assert "warning" == warned[0]["log_level"]
    assert "safety.other_rtorrents" in warned[0]["advice"]

    ours.load(second, commands=(LABEL_DOOMED,), complete=True)
    with capture_logs() as logs:
        await run_poll(client_for(ours), with_others(config, other.scgi_url))

    assert not [e for e in logs if e["event"] == "sharing.unlisted_rtorrent"]
    assert not second.payload_path.exists()
