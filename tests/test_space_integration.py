"""Free-space policies and file facts against a real rtorrent and real files.

The space test runs on a real 8 MiB tmpfs mounted for the test (as root); where
mounting is not permitted, the poll gets an injected `statvfs` that reports an
8 MiB filesystem with what its files occupy, and says so in the test's output.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from harness import RtorrentProcess, TorrentFactory, random_bytes
from structlog.testing import capture_logs

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.deletion import disk
from rtorrentd.deletion.results import Result
from rtorrentd.engine import plan as engine
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.engine.space import Disk
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import Observed, observe, poll_once
from rtorrentd.torrent import FileEntry, Torrent

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

MIB = 1024 * 1024
Measure = Callable[[Sequence[Torrent]], Disk]
SMALL = 8 * MIB


class CountingClient(RtorrentClient):
    """Records every hash whose files are listed (`f.multicall`)."""

    listed: list[str]

    async def files(self, info_hash: str) -> tuple[FileEntry, ...]:
        self.listed.append(info_hash)
        return await super().files(info_hash)

    async def all_files(self, hashes: Sequence[str]) -> dict[str, tuple[FileEntry, ...]]:
        self.listed.extend(hashes)
        return await super().all_files(hashes)


def counting_client(rt: RtorrentProcess) -> CountingClient:
    client = CountingClient(open_transport(rt.scgi_url, timeout=10.0))
    client.listed = []
    return client


def config_text(rt: RtorrentProcess, root: Path, body: str) -> Config:
    head = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n[safety]\nallowed_roots = ["{root}"]\n'
        "max_deletes_per_poll = 20\nmax_delete_fraction = 1.0\n"
    )
    return parse_config(head + body, "test.toml")


@pytest.fixture(params=["tmpfs", "injected"])
def small_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """An 8 MiB filesystem: (its directory, whether it is a real tmpfs mount).
    The "injected" case, and the tmpfs case where mounting is refused, get an
    injected statvfs instead."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = request.param == "tmpfs" and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield where, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def simulated_statvfs(root: Path) -> disk.StatVfs:
    """`statvfs` of an 8 MiB filesystem holding what is under `root` now."""

    def statvfs(path: str) -> os.statvfs_result:
        used = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        free_blocks = max(SMALL - used, 0) // 4096
        return os.statvfs_result(
            (4096, 4096, SMALL // 4096, free_blocks, free_blocks, 0, 0, 0, 0, 255)
        )

    return statvfs


def free_bytes(path: Path, statvfs: disk.StatVfs) -> int:
    vfs = statvfs(str(path))
    return vfs.f_bavail * vfs.f_frsize


async def test_a_low_filesystem_loses_just_enough_torrents_oldest_first(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, small_fs: tuple[Path, bool]
) -> None:
    root, mounted = small_fs
    statvfs = os.statvfs if mounted else simulated_statvfs(root)
    print("real tmpfs" if mounted else "mount refused: statvfs injected")
    # Five 1 MiB torrents, the oldest first; the very oldest is kept by a rule.
    loaded = []
    for n in range(5):
        made = torrent_factory(f"t{n}.bin", random_bytes(MIB, n), dest_dir=root)
        label = "keep" if n == 0 else ""
        commands = (f"d.custom.set=addtime,{1_700_000_000 + n}", f'd.custom1.set="{label}"')
        loaded.append(rtorrent.load(made, commands=commands, complete=True))
    before = free_bytes(root, statvfs)
    assert 2 * MIB < before < 4 * MIB  # 8 MiB less five payloads
    body = (
        '[[rule]]\nname = "pinned"\nwhen = \'label == "keep"\'\naction = "keep"\n'
        f'[[space]]\npath = "{root}"\nmin_free = "4MiB"\ntarget_free = "{before + 2 * MIB - 1}"\n'
        'candidates = \'complete\'\norder = "added asc"\naction = "delete"\n'
    )
    config = config_text(rtorrent, root, body)
    measure = None if mounted else (lambda ts: disk.measure(config.space, ts, statvfs))
    # Planning lists the files of the candidates it walks only: never the kept
    # torrent's. (Carrying out a deletion then lists every loaded torrent's.)
    _, looked, _ = await _observe(rtorrent, config, measure)
    assert loaded[0] not in looked.listed
    assert set(looked.listed) <= set(loaded[1:])
    client = counting_client(rtorrent)

    with capture_logs() as logs:
        result = await poll_once(
            client, config, Memory.empty(), dry_run=False, now=time.time(), measure=measure
        )

    assert [loaded[1], loaded[2]] == [s.hash for s in result.plan.steps]
    assert [Result.DONE, Result.DONE] == [r.result for r in result.results]
    assert {loaded[0], loaded[3], loaded[4]} == set(rtorrent.hashes())
    assert not (root / "t1.bin").exists() and not (root / "t2.bin").exists()
    assert free_bytes(root, statvfs) >= before + 2 * MIB - 1
    [outcome] = result.plan.space
    assert (2, False) == (outcome.deletions, outcome.short)
    [low] = [e for e in logs if e["event"] == "space.low"]
    assert 2 == low["deletions"]


async def test_hardlinked_is_read_only_for_torrents_cheaper_conditions_leave(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = tmp_path / "dl"
    archived = torrent_factory("archived.bin", random_bytes(50_000, 1), dest_dir=dl)
    plain = torrent_factory("plain.bin", random_bytes(50_000, 2), dest_dir=dl)
    music = torrent_factory("music.bin", random_bytes(50_000, 3), dest_dir=dl)
    (tmp_path / "archive").mkdir()
    os.link(dl / "archived.bin", tmp_path / "archive" / "archived.bin")
    tv = 'd.custom1.set="tv"'
    a = rtorrent.load(archived, commands=(tv,), complete=True)
    p = rtorrent.load(plain, commands=(tv,), complete=True)
    m = rtorrent.load(music, commands=('d.custom1.set="music"',), complete=True)
    body = '[[rule]]\nname = "archived"\nwhen = \'label == "tv" and hardlinked\'\naction = "stop"\n'
    config = config_text(rtorrent, dl, body)

    torrents, client, observed = await _observe(rtorrent, config)

    assert {a, p} == set(client.listed)  # never the music torrent's files
    assert m not in observed.files
    memory = remember(Memory(), torrents, time.time())
    result = engine.plan(torrents, config, time.time(), memory, files=observed.files)
    assert [(a, "archived")] == [(s.hash, s.rule) for s in result.steps]
    assert [(str(dl / "archived.bin"), 2)] == [(f.path, f.links) for f in observed.files[a]]


async def test_shared_finds_two_torrents_on_the_same_data_and_reads_no_others(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = tmp_path / "dl"
    data = random_bytes(70_000, 4)
    # The same file, two torrents (another piece length: another info-hash).
    first = torrent_factory("same.bin", data, dest_dir=dl)
    second = torrent_factory("same.bin", data, dest_dir=dl, piece_length=32768)
    alone = torrent_factory("alone.bin", random_bytes(70_000, 5), dest_dir=dl)
    elsewhere = torrent_factory("x.bin", random_bytes(1000, 6), dest_dir=tmp_path / "other")
    x = ('d.custom1.set="x"',)
    one = rtorrent.load(first, commands=x, complete=True)
    two = rtorrent.load(second, commands=x, complete=True)
    three = rtorrent.load(alone, commands=x, complete=True)
    other = rtorrent.load(elsewhere, commands=('d.custom1.set="y"',), complete=True)
    body = '[[rule]]\nname = "cross"\nwhen = \'label == "x" and shared\'\naction = "stop"\n'
    config = config_text(rtorrent, dl, body)

    torrents, client, observed = await _observe(rtorrent, config)

    assert {one, two, three} == set(client.listed)
    assert other not in client.listed
    memory = remember(Memory(), torrents, time.time())
    result = engine.plan(torrents, config, time.time(), memory, files=observed.files)
    assert {one, two} == {s.hash for s in result.steps}


async def _observe(
    rt: RtorrentProcess, config: Config, measure: Measure | None = None
) -> tuple[tuple[Torrent, ...], CountingClient, Observed]:
    client = counting_client(rt)
    now = time.time()
    torrents = await client.snapshot(engine.fetch_names(config))
    memory = remember(Memory(), torrents, now)
    observed = await observe(client, config, torrents, now, memory, measure=measure)
    return torrents, client, observed
