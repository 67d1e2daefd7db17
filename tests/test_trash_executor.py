"""`action = "trash"` against a real rtorrent (both versions) and real files: the
files are renamed into the bin (inodes kept), with the torrent's .torrent and what
restore needs; every guarantee of `delete` holds (shared data stays, refusals
before the stop, dry run); a crash at every step is finished by the next poll; and
`trash restore` brings a trashed torrent back seeding, proven by a real swarm."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from flow import LABEL_DOOMED, album, client_for, contents, one_result, state
from harness import RtorrentProcess, TorrentFactory, make_swarm, random_bytes
from structlog.testing import capture_logs
from test_trash import in_child
from trees import Canaries

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import Config
from rtorrentd.deletion import trash, trash_entry, trashing
from rtorrentd.deletion.journal import Intent, Journal
from rtorrentd.deletion.results import Result
from rtorrentd.deletion.trash_restore import restore_torrent
from rtorrentd.engine.memory import Memory
from rtorrentd.errors import ConfigError, ConnectionClosed, RpcFault, TrashError
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import PollResult, poll_once

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

TRASH_DOOMED = 'complete and label == "doomed"'


def trash_config(
    rt: RtorrentProcess,
    bin_dir: Path,
    action: str = "trash",
    extra: str = "",
    when: str = TRASH_DOOMED,
) -> Config:
    text = (
        f'[rtorrent]\nurl = "{rt.scgi_url}"\n'
        f'[safety]\nallowed_roots = ["{rt.download_dir}"]\nmax_delete_fraction = 1.0\n'
        f'[trash]\npath = "{bin_dir}"\n{extra}'
        f'[[rule]]\nname = "doomed"\nwhen = \'{when}\'\naction = "{action}"\n'
    )
    return parse_config(text, "test.toml")


async def poll(
    client: RtorrentClient,
    config: Config,
    journal: Journal | None = None,
    *,
    dry_run: bool = False,
) -> PollResult:
    now = time.time()
    return await poll_once(
        client, config, Memory.empty(), dry_run=dry_run, now=now, journal=journal
    )


def inodes(paths: list[Path]) -> dict[str, int]:
    return {p.name: os.stat(p).st_ino for p in paths}


@pytest.mark.parametrize("action", ["trash", "delete+replace_delete"])
async def test_trash_renames_the_files_into_the_bin_and_erases_the_torrent(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    tmp_path: Path,
    action: str,
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    commands = (LABEL_DOOMED, "d.custom.set=addtime,1700000000", "d.custom3.set=three")
    info_hash = rtorrent.load(doomed, commands=commands, complete=True)
    data = contents(doomed)
    before = {p: os.stat(p).st_ino for p in data}
    canaries.add(dl / "album.nfo")
    bin_dir = tmp_path / "bin"
    if action == "trash":
        config = trash_config(rtorrent, bin_dir)
    else:
        config = trash_config(rtorrent, bin_dir, "delete", "replace_delete = true\n")
    assert "trash" == config.rules[0].action.value

    with capture_logs() as logs:
        result = await poll(client_for(rtorrent), config)

    assert {} == state(rtorrent)
    assert not doomed.payload_path.exists()
    (entry,) = trash.entries(str(bin_dir))
    stored = Path(entry.path) / trash.DATA
    moved = {p: stored / p.relative_to(dl) for p in data}
    assert data == {p: moved[p].read_bytes() for p in data}
    assert before == {p: os.stat(moved[p]).st_ino for p in data}  # renamed, never copied
    record = entry.manifest.torrent
    assert record is not None
    assert (info_hash, "doomed", True, True) == (
        record.hash,
        record.label,
        record.started,
        record.multi_file,
    )
    assert {("addtime", "1700000000"), ("custom3", "three")} <= set(record.custom)
    assert (Path(entry.path) / trash.METAINFO).read_bytes() == doomed.data
    assert (doomed.size, "doomed") == (entry.manifest.size, entry.manifest.reason)
    (done,) = result.results
    assert (Result.DONE, 0) == (done.result, done.freed_bytes)  # freed when emptied
    event = one_result(logs, info_hash)
    assert ("action.done", "trash") == (event["event"], event["action"])
    assert entry.name in event["reason"]
    canaries.check()


async def test_dry_run_moves_nothing(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir)
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    data = contents(doomed)

    with capture_logs() as logs:
        await poll(client_for(rtorrent), trash_config(rtorrent, tmp_path / "bin"), dry_run=True)

    assert {info_hash: (1, 1)} == state(rtorrent)
    assert data == contents(doomed)
    assert not (tmp_path / "bin").exists()
    assert "would move 3 file(s)" in one_result(logs, info_hash)["reason"]


async def test_files_another_torrent_lists_stay_in_place(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    first = album(torrent_factory, dl)
    second = torrent_factory(
        "album",
        {e.path: (first.payload_path / os.fsdecode(e.path)).read_bytes() for e in first.files},
        dest_dir=dl,
        private=True,
        write_payload=False,
    )
    rtorrent.load(first, commands=(LABEL_DOOMED,), complete=True)
    rtorrent.load(second, complete=True)
    data = contents(first)
    before = {p: os.stat(p).st_ino for p in data}

    await poll(client_for(rtorrent), trash_config(rtorrent, tmp_path / "bin"))

    assert {second.info_hash: (1, 1)} == state(rtorrent)
    assert before == {p: os.stat(p).st_ino for p in data}  # the same files, in place
    (entry,) = trash.entries(str(tmp_path / "bin"))
    assert () == entry.manifest.items  # nothing moved: the metainfo and record only
    assert entry.manifest.torrent is not None
    assert {str(p) for p in data} == set(entry.manifest.torrent.kept)


async def test_a_bin_that_moved_to_another_filesystem_refuses_before_the_stop(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir)
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    data = contents(doomed)
    bin_dir = tmp_path / "bin"
    config = trash_config(rtorrent, bin_dir)  # checked here: the same filesystem
    elsewhere = Path("/dev/shm") / f"rtorrentd-bin-{os.getpid()}-{rtorrent_id(rtorrent)}"
    elsewhere.mkdir()
    bin_dir.symlink_to(elsewhere)  # now it is on tmpfs
    try:
        with capture_logs() as logs:
            await poll(client_for(rtorrent), config)
    finally:
        os.rmdir(elsewhere)

    event = one_result(logs, info_hash)
    assert "action.refused" == event["event"]
    assert "another filesystem" in event["reason"]
    assert {info_hash: (1, 1)} == state(rtorrent)  # still started
    assert data == contents(doomed)


def rtorrent_id(rt: RtorrentProcess) -> int:
    return rt.listen_port


def test_a_bin_on_another_filesystem_is_a_config_error(tmp_path: Path) -> None:
    root = tmp_path / "dl"
    root.mkdir()
    text = (
        '[rtorrent]\nurl = "scgi:///x.sock"\n'
        f'[safety]\nallowed_roots = ["{root}"]\n'
        '[trash]\npath = "/dev/shm/rtorrentd-trash"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.toml")
    message = str(caught.value)
    assert message.startswith('c.toml:6: [trash]: path = "/dev/shm/rtorrentd-trash": on another')
    assert f'path = "{root}/.rtorrentd-trash"' in message


def test_trash_without_a_bin_is_a_config_error() -> None:
    text = (
        '[rtorrent]\nurl = "scgi:///x.sock"\n[safety]\nallowed_roots = ["/srv/dl"]\n'
        '[[rule]]\nname = "r"\nwhen = "complete"\naction = "trash"\n'
    )
    with pytest.raises(ConfigError, match=r'test.toml:8: rule "r": action = "trash" needs'):
        parse_config(text, "test.toml")


# --- crashes ---------------------------------------------------------------------------


class FlakyClient(RtorrentClient):
    """Fails once at `method`, before or after the real call, like a crash there."""

    def __init__(self, rt: RtorrentProcess, method: str, when: str, error: Exception) -> None:
        super().__init__(open_transport(rt.scgi_url, timeout=10.0))
        self.method, self.when, self.error = method, when, error
        self.failed = False

    async def _around(self, method: str, real: Any, info_hash: str) -> None:
        if (method, "before") == (self.method, self.when) and not self.failed:
            self.failed = True
            raise self.error
        await real(info_hash)
        if (method, "after") == (self.method, self.when) and not self.failed:
            self.failed = True
            raise self.error

    async def stop(self, info_hash: str) -> None:
        await self._around("stop", super().stop, info_hash)

    async def close(self, info_hash: str) -> None:
        await self._around("close", super().close, info_hash)

    async def erase(self, info_hash: str) -> None:
        await self._around("erase", super().erase, info_hash)


RPC_POINTS = [(m, w) for m in ("stop", "close", "erase") for w in ("before", "after")]


@pytest.mark.parametrize("point", RPC_POINTS, ids=["-".join(p) for p in RPC_POINTS])
async def test_a_failure_at_any_rtorrent_step_is_finished_by_the_next_poll(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    tmp_path: Path,
    point: tuple[str, str],
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir)
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    data = contents(doomed)
    bin_dir, journal = tmp_path / "bin", Journal(str(tmp_path / "state"))
    config = trash_config(rtorrent, bin_dir)
    flaky = FlakyClient(rtorrent, *point, ConnectionClosed("injected"))

    with pytest.raises(ConnectionClosed):
        await poll(flaky, config, journal)
    await poll(client_for(rtorrent), config, journal)

    assert {} == state(rtorrent)
    (entry,) = trash.entries(str(bin_dir))  # one entry, whole
    stored = Path(entry.path) / trash.DATA
    assert data == {p: (stored / p.relative_to(rtorrent.download_dir)).read_bytes() for p in data}
    assert entry.manifest.torrent is not None and entry.manifest.torrent.started
    assert info_hash == entry.hash
    assert () == journal.pending()


# Where the daemon dies while it makes the entry: before the k-th rename; in the
# write of the partial manifest (0), of the .torrent (1) or of the complete
# manifest (2: every file moved, not committed); or not at all, after the commit
# (the erase still to do).
MOVE_CRASHES = [("rename_noreplace", k) for k in range(3)]
MOVE_CRASHES += [("_write_file", 0), ("_write_file", 1), ("_write_file", 2), ("committed", 0)]


@pytest.mark.parametrize("point", MOVE_CRASHES, ids=[f"{n}-{k}" for n, k in MOVE_CRASHES])
async def test_a_crash_while_the_files_move_is_rolled_back_and_finished(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    point: tuple[str, int],
) -> None:
    """The next poll puts back what a half-made entry holds, then trashes the
    torrent whole; an entry committed before the crash is kept and not made twice."""
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    info_hash = rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    data = contents(doomed)
    bin_dir, journal = tmp_path / "bin", Journal(str(tmp_path / "state"))
    config = trash_config(rtorrent, bin_dir)
    client = client_for(rtorrent)
    # What the executor has done by then: recorded, stopped, closed, session saved.
    journal.begin(Intent(info_hash, "album", "doomed", time.time() - 1, "trash", True))
    rtorrent.call("d.stop", info_hash)
    rtorrent.call("d.close", info_hash)
    job, deletion = await _trash_job(client, config, info_hash, tmp_path)

    name, calls = point

    def move() -> None:
        if name != "committed":
            real = getattr(trash_entry, name)
            seen = [0]

            def dying(*args: Any, **kwargs: Any) -> None:
                if seen[0] == calls:
                    os._exit(17)
                seen[0] += 1
                real(*args, **kwargs)

            monkeypatch.setattr(trash_entry, name, dying)
        trashing.move_files(job, deletion, time.time())

    assert (0 if name == "committed" else 17) == in_child(move)
    moved = {"rename_noreplace": calls, "_write_file": 3 * (calls == 2), "committed": 3}[name]
    assert 3 - moved == len([p for p in data if p.exists()])

    with capture_logs() as logs:
        await poll(client, config, journal)

    assert {} == state(rtorrent)
    (entry,) = trash.entries(str(bin_dir))
    stored = Path(entry.path) / trash.DATA
    assert data == {p: (stored / p.relative_to(dl)).read_bytes() for p in data}
    assert entry.manifest.torrent is not None and entry.manifest.torrent.started
    assert "action.done" == one_result(logs, info_hash)["event"]
    assert [] == [n for n in os.listdir(bin_dir) if n != entry.name]


async def _trash_job(
    client: RtorrentClient, config: Config, info_hash: str, tmp_path: Path
) -> tuple[trashing.Job, Any]:
    from rtorrentd.deletion import exact

    torrent = await client.torrent(info_hash, {"path", "directory", "multi_file", "name"})
    entries = await client.files(info_hash)
    planned = await exact.plan_exact(client, torrent, entries, config.safety.allowed_roots, ())
    await client.save_session(info_hash)
    metainfo, session = trashing.session_files(planned.session_dir, info_hash)
    record = trashing.torrent_record(
        info_hash, torrent.name, planned.deletion, session, multi_file=True, started=True
    )
    assert config.trash is not None
    return trashing.Job(config.trash.path, record, metainfo, "doomed"), planned.deletion


# --- restore ------------------------------------------------------------------------------


async def test_restore_brings_a_trashed_torrent_back_seeding_to_a_real_swarm(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    seeder, leecher = rtorrent_pair
    dl = seeder.download_dir
    doomed = torrent_factory(
        "show",
        {"e01.mkv": random_bytes(900_000, 1), "sub/e01.srt": random_bytes(20_000, 2)},
        dest_dir=dl,
    )
    info_hash = seeder.load(doomed, commands=('d.custom1.set="tv%20shows"',), complete=True)
    seeder.call("d.custom.set", info_hash, "addtime", "1700000000")
    data = contents(doomed)
    bin_dir = tmp_path / "bin"
    client = client_for(seeder)
    when = 'complete and label == "tv shows"'
    await poll(client, trash_config(seeder, bin_dir, extra='keep_for = "7d"\n', when=when))
    assert {} == state(seeder) and not doomed.payload_path.exists()
    (entry,) = trash.entries(str(bin_dir))

    with capture_logs() as logs:
        restored = await restore_torrent(client, trash.find(str(bin_dir), info_hash[:10]))

    assert (True, True) == (restored.complete, restored.started)
    assert data == contents(doomed)
    assert [] == os.listdir(bin_dir)
    assert {info_hash: (1, 1)} == state(seeder)
    assert ("tv%20shows", "1700000000", str(doomed.payload_path)) == (
        seeder.call("d.custom1", info_hash),
        seeder.call("d.custom", info_hash, "addtime"),
        seeder.call("d.directory", info_hash),
    )
    assert any(e["event"] == "trash.restored" for e in logs)
    swarm = make_swarm(seeder, leecher, doomed)  # the leecher gets it from the restored one
    assert swarm.seeder_ratio >= 1000
    for path, content in data.items():
        assert content == (leecher.download_dir / path.relative_to(dl)).read_bytes()
    assert entry.name not in os.listdir(tmp_path)


async def test_restore_refuses_when_the_place_is_taken_or_the_torrent_is_loaded(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir)
    rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True, start=True)
    bin_dir = tmp_path / "bin"
    client = client_for(rtorrent)
    await poll(client, trash_config(rtorrent, bin_dir))
    (entry,) = trash.entries(str(bin_dir))
    squatter = doomed.payload_path / "cd2" / "b.bin"
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"someone else's")

    with pytest.raises(TrashError, match="already there"):
        await restore_torrent(client, entry)

    assert squatter.read_bytes() == b"someone else's"
    assert {} == state(rtorrent)
    assert [entry.name] == [e.name for e in trash.entries(str(bin_dir))]
    squatter.unlink()
    rtorrent.load(doomed, start=False)  # someone added it again meanwhile
    with pytest.raises(TrashError, match="loaded"):
        await restore_torrent(client, entry)
    assert not (doomed.payload_path / "a.bin").exists()


async def test_a_failing_load_puts_the_files_back_into_the_bin(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    doomed = album(torrent_factory, rtorrent.download_dir)
    rtorrent.load(doomed, commands=(LABEL_DOOMED,), complete=True)
    bin_dir = tmp_path / "bin"
    await poll(client_for(rtorrent), trash_config(rtorrent, bin_dir))
    (entry,) = trash.entries(str(bin_dir))

    class Refusing(RtorrentClient):
        async def call(self, method: str, *params: object) -> object:
            if method == "load.raw":
                raise RpcFault(-503, "injected")
            return await super().call(method, *params)

    refusing = Refusing(open_transport(rtorrent.scgi_url, timeout=10.0))
    with pytest.raises(RpcFault):
        await restore_torrent(refusing, entry)

    assert not (doomed.payload_path / "a.bin").exists()
    (again,) = trash.entries(str(bin_dir))
    assert again.name == entry.name
    with anyio.fail_after(60):
        restored = await restore_torrent(client_for(rtorrent), again)
    assert restored.complete and restored.started
