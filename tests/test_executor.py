"""executor.apply against a real rtorrent: every destructive test tries to make it
delete the wrong thing and proves it refuses.

Each test checks three things afterwards: canary files (presence *and* content),
rtorrent's own view through the harness's independent SCGI client, and the
structlog events. Plans come from the real engine (`poll_once`, or `engine.plan`
when a test must act between planning and applying).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from flow import (
    DOOMED,
    LABEL_DOOMED,
    Rule,
    album,
    client_for,
    config_for,
    contents,
    events,
    one_result,
    poll,
    state,
)
from harness import RtorrentProcess, TorrentFactory, TorrentFile, make_swarm, random_bytes
from structlog.testing import capture_logs
from trees import Canaries

from rtorrentd.config.model import Config
from rtorrentd.deletion import executor
from rtorrentd.deletion.results import Result, StepResult
from rtorrentd.engine import plan as engine
from rtorrentd.engine.memory import Memory, remember
from rtorrentd.errors import ConnectionClosed, RpcFault, TransportError, UnknownMethod
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport
from rtorrentd.service.poll import rechecker

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


# --- helpers -----------------------------------------------------------------------


def disk_state(root: Path) -> dict[str, tuple[str, int, str, int]]:
    """Every entry under root: kind, size, sha1 of content, mtime (links not followed)."""
    found: dict[str, tuple[str, int, str, int]] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if os.path.islink(path):
                found[path] = ("link", st.st_size, os.readlink(path), st.st_mtime_ns)
            elif os.path.isfile(path):
                digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()
                found[path] = ("file", st.st_size, digest, st.st_mtime_ns)
            else:
                found[path] = ("dir", 0, "", st.st_mtime_ns)
    return found


def load_doomed(rt: RtorrentProcess, torrent: TorrentFile, **options: Any) -> str:
    return rt.load(torrent, commands=(LABEL_DOOMED,), complete=True, **options)


def stop_and_close(rt: RtorrentProcess, info_hash: str) -> None:
    rt.call("d.stop", info_hash)
    rt.call("d.close", info_hash)


def assert_refused(
    rt: RtorrentProcess, info_hash: str, logs: Sequence[Mapping[str, Any]], *words: str
) -> None:
    event = one_result(logs, info_hash)
    assert ("action.refused", "warning", 0) == (
        event["event"],
        event["log_level"],
        event["freed_bytes"],
    )
    assert all(word in event["reason"] for word in words), event["reason"]
    assert info_hash in rt.hashes()
    assert not events(logs, "action.deleting")


# --- the whole flow ------------------------------------------------------------------


async def test_ratio_reached_by_real_upload_deletes_exactly_that_torrent(
    rtorrent_pair: tuple[RtorrentProcess, RtorrentProcess],
    torrent_factory: TorrentFactory,
    canaries: Canaries,
) -> None:
    seeder, leecher = rtorrent_pair
    dl = seeder.download_dir
    seeded = album(torrent_factory, dl)
    kept = torrent_factory("kept.bin", random_bytes(25_000, 9), dest_dir=dl)
    seeder.load(kept, complete=True)
    canaries.keep(contents(kept))
    canaries.add(dl / "album.nfo")
    canaries.add(dl / "other" / "a.bin", random_bytes(30_000, 1))
    swarm = make_swarm(seeder, leecher, seeded)
    assert swarm.seeder_ratio >= 1000
    config = config_for(seeder, [dl], [("seeded", "complete and ratio >= 1.0", "delete")])

    with capture_logs() as logs:
        result = await poll(client_for(seeder), config)

    assert {kept.info_hash: (1, 1)} == state(seeder)
    assert not seeded.payload_path.exists()  # files, cd2/deep, cd2 and album itself
    canaries.check()
    (done,) = result.deleted
    assert (seeded.info_hash, seeded.size, "") == (done.step.hash, done.freed_bytes, done.reason)
    event = one_result(logs, seeded.info_hash)
    assert ("action.done", "delete", "seeded", seeded.size) == (
        event["event"],
        event["action"],
        event["rule"],
        event["freed_bytes"],
    )
    assert event["values"]["ratio"] >= 1.0 and event["values"]["complete"] is True
    assert [seeded.info_hash] == [e["hash"] for e in events(logs, "action.deleting")]


async def test_stop_leaves_it_loaded_stopped_and_closed(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    canaries.keep(contents(torrent))
    config = config_for(rtorrent, [rtorrent.download_dir], [("s", 'label == "doomed"', "stop")])

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert {info_hash: (0, 0)} == state(rtorrent)
    canaries.check()
    assert "action.done" == one_result(logs, info_hash)["event"]


async def test_remove_of_a_running_torrent_keeps_its_data(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    canaries.keep(contents(torrent))
    config = config_for(rtorrent, [rtorrent.download_dir], [("r", 'label == "doomed"', "remove")])
    assert {info_hash: (1, 1)} == state(rtorrent)  # d.erase of a running torrent

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert {} == state(rtorrent)
    canaries.check()
    event = one_result(logs, info_hash)
    assert ("action.done", "remove", 0) == (event["event"], event["action"], event["freed_bytes"])


# --- shared data and links ---------------------------------------------------------


async def test_cross_seeded_data_is_kept_until_the_last_torrent_goes(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    first = album(torrent_factory, dl)
    # Same files, but private: another info-hash, as a cross-seed on a second tracker.
    second = torrent_factory(
        "album",
        {e.path: (first.payload_path / os.fsdecode(e.path)).read_bytes() for e in first.files},
        dest_dir=dl,
        private=True,
        write_payload=False,
    )
    assert first.info_hash != second.info_hash
    load_doomed(rtorrent, first)
    rtorrent.load(second, complete=True)
    data = contents(first)
    client, config = client_for(rtorrent), config_for(rtorrent, [dl])

    with capture_logs() as logs:
        result = await poll(client, config)

    assert {second.info_hash: (1, 1)} == state(rtorrent)
    assert data == contents(first)
    (done,) = result.results
    shared = tuple(str(p) for p in data)
    assert (Result.DONE, 0, set(shared)) == (done.result, done.freed_bytes, set(done.kept_shared))
    event = one_result(logs, first.info_hash)
    assert "kept 3 file(s) another loaded torrent uses" in event["reason"]
    assert set(shared) == set(event["kept_shared"])

    rtorrent.call("d.custom1.set", second.info_hash, "doomed")
    with capture_logs() as logs:
        result = await poll(client, config)

    assert {} == state(rtorrent)
    assert not first.payload_path.exists()
    assert (second.size, None) == (
        result.results[0].freed_bytes,
        one_result(logs, second.info_hash)["kept_shared"],
    )
    canaries.check()


async def test_a_hard_linked_file_keeps_its_other_name_and_frees_nothing(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    tmp_path: Path,
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    archived = tmp_path / "archive" / "a.bin"
    archived.parent.mkdir()
    os.link(torrent.payload_path / "a.bin", archived)
    canaries.keep({archived: archived.read_bytes()})

    with capture_logs() as logs:
        result = await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir]))

    assert {} == state(rtorrent)
    assert not torrent.payload_path.exists()
    canaries.check()
    assert 1 == archived.stat().st_nlink
    freed = torrent.size - 30_000  # a.bin's data is still reachable from the archive
    assert [freed, freed] == [
        result.results[0].freed_bytes,
        one_result(logs, info_hash)["freed_bytes"],
    ]


# --- refusals: nothing deleted, the torrent still loaded ----------------------------


async def test_refuses_data_outside_the_allowed_roots(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    tmp_path: Path,
) -> None:
    torrent = album(torrent_factory, tmp_path / "elsewhere")
    info_hash = load_doomed(rtorrent, torrent)
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir]))

    assert_refused(rtorrent, info_hash, logs, "outside every allowed root")
    assert {info_hash: (1, 1)} == state(rtorrent)
    canaries.check()


async def test_refuses_a_directory_swapped_for_a_symlink_to_lookalike_files(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    tmp_path: Path,
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    stop_and_close(rtorrent, info_hash)
    # The classic attack: same names, same sizes, someone else's data.
    outside = tmp_path / "outside" / "cd2"
    canaries.add(outside / "b.bin", random_bytes(20_000, 77))
    canaries.add(outside / "deep" / "c.bin", random_bytes(10_000, 78))
    cd2 = torrent.payload_path / "cd2"
    for path in (cd2 / "deep" / "c.bin", cd2 / "b.bin"):
        path.unlink()
    (cd2 / "deep").rmdir()
    cd2.rmdir()
    cd2.symlink_to(outside, target_is_directory=True)
    canaries.keep({torrent.payload_path / "a.bin": random_bytes(30_000, 1)})

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [tmp_path]))

    assert_refused(rtorrent, info_hash, logs, "symlink")
    assert cd2.is_symlink()
    canaries.check()


MANGLED = [
    pytest.param(False, False, id="file"),
    pytest.param(False, True, id="file-with-lookalike"),
    pytest.param(True, False, id="directory"),
    pytest.param(True, True, id="directory-with-lookalike"),
]


@pytest.mark.parametrize(("multi_file", "lookalike"), MANGLED)
async def test_a_name_rtorrent_mangled_is_deleted_by_its_exact_bytes(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    multi_file: bool,
    lookalike: bool,
) -> None:
    """rtorrent shows latin-1 `caf\\xe9` as `caf?` (0.16: `caf%E9`); the exact bytes
    come from the metainfo. A file really named what rtorrent shows is someone
    else's: kept. A lookalike of the torrent's own directory makes the directory
    itself ambiguous: refused."""
    dl = rtorrent.download_dir
    if multi_file:
        torrent = album(torrent_factory, dl, name=b"caf\xe9")
    else:
        torrent = torrent_factory(b"caf\xe9.bin", random_bytes(4_000, 5), dest_dir=dl)
    info_hash = load_doomed(rtorrent, torrent)
    shown = rtorrent.call("d.name", info_hash)
    assert torrent.reported_name(rtorrent.version) == shown
    fake = dl / torrent.rtorrent_name  # really named "caf?": someone else's data
    if lookalike:
        for entry, seed in zip(torrent.files, range(50, 60), strict=False):
            path = fake / os.fsdecode(entry.path) if multi_file else fake
            canaries.add(path, random_bytes(entry.size, seed))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    if multi_file and lookalike:
        canaries.keep(contents(torrent))
        assert_refused(rtorrent, info_hash, logs, "'caf?'", "'caf\\udce9'", "shows alike")
    else:
        event = one_result(logs, info_hash)
        assert ("action.done", torrent.size) == (event["event"], event["freed_bytes"])
        assert not os.path.lexists(os.fsencode(torrent.payload_path))
        assert info_hash not in rtorrent.hashes()
    canaries.check()


async def test_refuses_a_file_whose_size_changed_on_disk(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    stop_and_close(rtorrent, info_hash)
    with (torrent.payload_path / "cd2" / "b.bin").open("ab") as grown:
        grown.write(b"someone's appended notes")
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir]))

    assert_refused(rtorrent, info_hash, logs, "20024 bytes but rtorrent lists 20000")
    assert {info_hash: (0, 0)} == state(rtorrent)
    canaries.check()


@pytest.mark.parametrize("multi_file", [False, True], ids=["single-file", "multi-file"])
async def test_empty_base_path_after_a_restart_deletes_exactly_the_torrents_files(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    multi_file: bool,
) -> None:
    dl = rtorrent.download_dir
    if multi_file:
        torrent = album(torrent_factory, dl)
        # Added by the user inside the torrent's directory: kept, and so is the directory.
        canaries.add(torrent.payload_path / "cover.jpg")
        gone = [torrent.payload_path / "a.bin", torrent.payload_path / "cd2"]
    else:
        torrent = torrent_factory("movie.mkv", random_bytes(30_000, 3), dest_dir=dl)
        gone = [torrent.payload_path]
    # Lookalikes around it: a same-named file (same size) in a same-named directory, etc.
    canaries.add(dl / "movie" / "movie.mkv", random_bytes(30_000, 4))
    canaries.add(dl / "movie.mkv.nfo")
    canaries.add(dl / "a.bin", random_bytes(30_000, 1))
    info_hash = load_doomed(rtorrent, torrent)
    rtorrent.call("d.stop", info_hash)
    rtorrent.restart()
    assert ("", 0) == (
        rtorrent.call("d.base_path", info_hash),
        rtorrent.call("d.is_open", info_hash),
    )

    with capture_logs() as logs:
        result = await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    assert {} == state(rtorrent)
    assert not any(path.exists() for path in gone)
    canaries.check()
    assert [torrent.size] == [r.freed_bytes for r in result.results]
    if multi_file:
        assert "directories kept" in one_result(logs, info_hash)["reason"]


# --- crash safety --------------------------------------------------------------------


class FlakyClient(RtorrentClient):
    """Fails once at `method`, before or after the real call, like a crash there."""

    def __init__(self, rt: RtorrentProcess, method: str, when: str, error: Exception) -> None:
        super().__init__(open_transport(rt.scgi_url, timeout=10.0))
        self.method, self.when, self.error = method, when, error
        self.failed = False

    async def _maybe_fail(self, method: str, moment: str) -> None:
        if (method, moment) == (self.method, self.when) and not self.failed:
            self.failed = True
            raise self.error

    async def files(self, info_hash: str) -> Any:
        await self._maybe_fail("files", "before")
        return await super().files(info_hash)

    async def stop(self, info_hash: str) -> None:
        await self._around("stop", super().stop, info_hash)

    async def close(self, info_hash: str) -> None:
        await self._around("close", super().close, info_hash)

    async def erase(self, info_hash: str) -> None:
        await self._around("erase", super().erase, info_hash)

    async def _around(self, method: str, real: Any, info_hash: str) -> None:
        await self._maybe_fail(method, "before")
        await real(info_hash)
        await self._maybe_fail(method, "after")


CRASH_POINTS = [
    ("files", "before"),
    ("stop", "before"),
    ("stop", "after"),
    ("close", "before"),
    ("close", "after"),
    ("erase", "before"),
    ("erase", "after"),
]


@pytest.mark.parametrize("unreachable", [True, False], ids=["transport", "fault"])
@pytest.mark.parametrize("point", CRASH_POINTS, ids=["-".join(p) for p in CRASH_POINTS])
async def test_a_failure_between_steps_is_completed_by_the_next_poll(
    rtorrent: RtorrentProcess,
    torrent_factory: TorrentFactory,
    canaries: Canaries,
    point: tuple[str, str],
    unreachable: bool,
) -> None:
    method, when = point
    dl = rtorrent.download_dir
    torrent = album(torrent_factory, dl)
    other = torrent_factory("other.bin", random_bytes(5_000, 8), dest_dir=dl)
    info_hash = load_doomed(rtorrent, torrent)
    rtorrent.load(other, complete=True)
    canaries.keep(contents(other))
    canaries.add(dl / "album.nfo")
    config = config_for(rtorrent, [dl])
    error = ConnectionClosed("injected") if unreachable else RpcFault(-503, "injected")
    flaky = FlakyClient(rtorrent, method, when, error)

    with capture_logs() as logs:
        if unreachable:
            with pytest.raises(TransportError):  # the daemon backs off and retries
                await poll(flaky, config)
        else:
            await poll(flaky, config)

    assert flaky.failed
    first = one_result(logs, info_hash)
    assert ("action.failed", "error") == (first["event"], first["log_level"])
    assert "injected" in first["reason"]
    if (method, when) == ("erase", "before"):
        assert "files deleted" in first["reason"] and first["freed_bytes"] == torrent.size
        assert {info_hash: (0, 0), other.info_hash: (1, 1)} == state(rtorrent)
        assert not torrent.payload_path.exists()

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert {other.info_hash: (1, 1)} == state(rtorrent)
    assert not torrent.payload_path.exists()
    canaries.check()
    if (method, when) != ("erase", "after"):
        assert "action.done" == one_result(logs, info_hash)["event"]


class HangingEraseClient(RtorrentClient):
    """rtorrent hangs on d.erase until the poll's deadline passes (`deadline` cancelled)."""

    def __init__(self, rt: RtorrentProcess, deadline: anyio.CancelScope) -> None:
        super().__init__(open_transport(rt.scgi_url, timeout=10.0))
        self.deadline = deadline

    async def erase(self, info_hash: str) -> None:
        self.deadline.cancel()
        await anyio.sleep_forever()


async def test_a_step_cut_short_by_the_deadline_is_logged_and_the_next_poll_finishes_it(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    canaries.add(rtorrent.download_dir / "album.nfo")
    config = config_for(rtorrent, [rtorrent.download_dir])

    with capture_logs() as logs, anyio.CancelScope() as deadline:
        await poll(HangingEraseClient(rtorrent, deadline), config)

    assert deadline.cancelled_caught
    cut = one_result(logs, info_hash)
    assert ("action.failed", "error") == (cut["event"], cut["log_level"])
    assert "cut short by the poll's deadline" in cut["reason"]
    assert {info_hash: (0, 0)} == state(rtorrent)  # stopped, closed, not erased
    assert not torrent.payload_path.exists()

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert {} == state(rtorrent)
    assert "action.done" == one_result(logs, info_hash)["event"]
    canaries.check()


async def test_half_deleted_files_are_finished_and_the_torrent_erased(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    """The state a crash in the middle of the unlinks leaves behind."""
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    stop_and_close(rtorrent, info_hash)
    (torrent.payload_path / "a.bin").unlink()
    canaries.add(rtorrent.download_dir / "album.nfo")

    with capture_logs() as logs:
        result = await poll(client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir]))

    assert {} == state(rtorrent)
    assert not torrent.payload_path.exists()
    canaries.check()
    assert [30_000] == [r.freed_bytes for r in result.results]
    assert "1 file(s) already gone" in one_result(logs, info_hash)["reason"]


async def test_all_files_missing_from_a_started_torrent_is_refused_until_it_is_stopped(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    """An unmounted disk or moved data looks like "every file already gone": the
    torrent must not be erased, or its data is orphaned when the disk comes back."""
    torrent = album(torrent_factory, rtorrent.download_dir)
    info_hash = load_doomed(rtorrent, torrent)
    moved = rtorrent.download_dir.parent / "elsewhere"
    torrent.payload_path.rename(moved)  # the data is not where rtorrent says any more
    canaries.add(moved / "a.bin")
    config = config_for(rtorrent, [rtorrent.download_dir])

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert_refused(rtorrent, info_hash, logs, "none of its files", "is the disk mounted")
    canaries.check()
    # Stopped by hand (the user confirms the data is gone): now it is removed.
    stop_and_close(rtorrent, info_hash)
    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)
    assert "action.done" == one_result(logs, info_hash)["event"]
    assert {} == state(rtorrent)
    canaries.check()


async def test_rtorrent_gone_mid_poll_raises_and_deletes_nothing(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    torrent = album(torrent_factory, rtorrent.download_dir)
    load_doomed(rtorrent, torrent)
    canaries.keep(contents(torrent))
    client, config = client_for(rtorrent), config_for(rtorrent, [rtorrent.download_dir])
    now, torrents = time.time(), await client.snapshot(engine.fetch_names(config))
    memory = remember(Memory.empty(), torrents, now)
    plan = engine.plan(torrents, config, now, memory)
    rtorrent.kill()

    with pytest.raises(TransportError):
        await apply_plan(plan, client, config, rechecker(config, now, memory))

    canaries.check()


# --- rtorrent's own hooks, the engine's valves, dry-run, races ----------------------


# One torrent labelled for each action, and the rules that act on the label.
BY_LABEL: tuple[Rule, ...] = (
    ("d", 'label == "delete"', "delete"),
    ("r", 'label == "remove"', "remove"),
    ("s", 'label == "stop"', "stop"),
)


def load_one_per_action(rt: RtorrentProcess, factory: TorrentFactory) -> dict[str, TorrentFile]:
    """An album labelled `delete`, one `remove`, one `stop`, loaded started."""
    torrents = {}
    for seed, label in enumerate(("delete", "remove", "stop")):
        torrents[label] = album(factory, rt.download_dir, name=label, seed=10 * seed)
        rt.load(torrents[label], commands=(f'd.custom1.set="{label}"',))
    return torrents


async def test_an_erase_hook_refuses_remove_and_delete_but_not_stop(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    torrents = load_one_per_action(rtorrent, torrent_factory)
    hashes = {label: t.info_hash for label, t in torrents.items()}
    for torrent in torrents.values():
        canaries.keep(contents(torrent))
    rtorrent.call("method.set_key", "", "event.download.erased", "rm_data", "print=x")

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl], BY_LABEL))

    for label in ("delete", "remove"):
        assert_refused(rtorrent, hashes[label], logs, "event.download.erased: rm_data")
    assert "action.done" == one_result(logs, hashes["stop"])["event"]
    assert {hashes["delete"]: (1, 1), hashes["remove"]: (1, 1), hashes["stop"]: (0, 0)} == state(
        rtorrent
    )
    canaries.check()


class NoMethodGetClient(RtorrentClient):
    """An rtorrent build without `method.get`: its erase hooks' commands are unknown."""

    async def call(self, method: str, *params: object) -> object:
        if method == "method.get":
            raise UnknownMethod(-506, "Method 'method.get' not defined")
        return await super().call(method, *params)


async def test_erase_hooks_that_cannot_be_read_refuse_remove_and_delete(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    doomed = album(torrent_factory, dl)
    stopped = album(torrent_factory, dl, name="stopped", seed=10)
    doomed_hash = load_doomed(rtorrent, doomed)
    stopped_hash = rtorrent.load(stopped, commands=('d.custom1.set="stop"',))
    canaries.keep({**contents(doomed), **contents(stopped)})
    rules = [DOOMED, ("s", 'label == "stop"', "stop")]
    client = NoMethodGetClient(open_transport(rtorrent.scgi_url, timeout=10.0))

    with capture_logs() as logs:
        await poll(client, config_for(rtorrent, [dl], rules))

    assert_refused(rtorrent, doomed_hash, logs, "cannot check what rtorrent runs")
    assert {doomed_hash: (1, 1), stopped_hash: (0, 0)} == state(rtorrent)
    canaries.check()


async def test_max_deletes_per_poll_deletes_one_torrent_per_poll(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    doomed = [album(torrent_factory, dl, name=f"doomed{i}", seed=10 * i) for i in range(3)]
    for torrent in doomed:
        load_doomed(rtorrent, torrent)
    kept = torrent_factory("kept.bin", random_bytes(5_000, 99), dest_dir=dl)
    rtorrent.load(kept, complete=True)
    canaries.keep(contents(kept))
    client, config = client_for(rtorrent), config_for(rtorrent, [dl], max_deletes=1)

    for remaining in (2, 1, 0):
        with capture_logs() as logs:
            result = await poll(client, config)
        assert 1 == len(result.deleted) == len(events(logs, "action.deleting"))
        assert (remaining, remaining + 1) == (len(result.plan.held), len(state(rtorrent)))
        notes = [e["note"] for e in events(logs, "plan.held")]
        assert notes == (
            [
                f"max_deletes_per_poll = 1: {remaining + 1} deletions,"
                f" {remaining} wait for the next poll"
            ]
            if remaining
            else []
        )
        assert remaining == sum(t.payload_path.exists() for t in doomed)
    canaries.check()


async def test_max_delete_fraction_holds_everything_back(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    for i in range(2):
        torrent = album(torrent_factory, dl, name=f"doomed{i}", seed=10 * i)
        load_doomed(rtorrent, torrent)
        canaries.keep(contents(torrent))
    before = state(rtorrent)

    with capture_logs() as logs:
        result = await poll(client_for(rtorrent), config_for(rtorrent, [dl], fraction=0.5))

    assert ((), 2) == (result.results, len(result.plan.held))
    assert "max_delete_fraction = 0.5" in events(logs, "plan.held")[0]["note"]
    assert before == state(rtorrent)
    canaries.check()


async def test_dry_run_changes_nothing_byte_for_byte(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    torrents = load_one_per_action(rtorrent, torrent_factory)
    files_before, rtorrent_before = disk_state(rtorrent.root), state(rtorrent)

    with capture_logs() as logs:
        result = await poll(
            client_for(rtorrent), config_for(rtorrent, [dl], BY_LABEL), dry_run=True
        )

    assert files_before == disk_state(rtorrent.root)
    assert rtorrent_before == state(rtorrent)
    assert [Result.DRY_RUN] * 3 == [r.result for r in result.results]
    planned = {e["action"]: e for e in events(logs, "action.planned")}
    assert {"delete": torrents["delete"].size, "remove": 0, "stop": 0} == {
        action: e["freed_bytes"] for action, e in planned.items()
    }
    assert all(e["dry_run"] is True for e in planned.values())
    assert not events(logs, "action.deleting")


async def test_a_torrent_erased_between_plan_and_apply_is_skipped(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    vanishing = album(torrent_factory, dl, name="vanishing")
    staying = album(torrent_factory, dl, name="staying", seed=10)
    for torrent in (vanishing, staying):
        load_doomed(rtorrent, torrent)
    canaries.keep(contents(vanishing))
    client, config = client_for(rtorrent), config_for(rtorrent, [dl])
    now, torrents = time.time(), await client.snapshot(engine.fetch_names(config))
    memory = remember(Memory.empty(), torrents, now)
    plan = engine.plan(torrents, config, now, memory)
    rtorrent.call("d.erase", vanishing.info_hash)

    with capture_logs() as logs:
        results = await apply_plan(plan, client, config, rechecker(config, now, memory))

    assert {vanishing.info_hash: Result.SKIPPED, staying.info_hash: Result.DONE} == {
        r.step.hash: r.result for r in results
    }
    event = one_result(logs, vanishing.info_hash)
    assert ("action.skipped", "the torrent is no longer loaded") == (
        event["event"],
        event["reason"],
    )
    assert not staying.payload_path.exists()
    canaries.check()


async def apply_plan(
    plan: engine.Plan, client: RtorrentClient, config: Config, still: executor.StillMatches
) -> tuple[StepResult, ...]:
    return await executor.apply(
        plan,
        client,
        allowed_roots=config.safety.allowed_roots,
        names=engine.fetch_names(config),
        still_matches=still,
        dry_run=False,
    )


class KillingClient(RtorrentClient):
    """SIGKILLs rtorrent just before the erase: the files are gone, the erase is not sent."""

    def __init__(self, rt: RtorrentProcess) -> None:
        super().__init__(open_transport(rt.scgi_url, timeout=10.0))
        self.rt = rt

    async def erase(self, info_hash: str) -> None:
        self.rt.kill()
        await super().erase(info_hash)


async def test_rtorrent_killed_between_unlink_and_erase_is_completed_after_its_restart(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    dl = rtorrent.download_dir
    torrent = album(torrent_factory, dl)
    info_hash = load_doomed(rtorrent, torrent)
    canaries.add(dl / "album.nfo")
    config = config_for(rtorrent, [dl])

    with capture_logs() as logs, pytest.raises(TransportError):
        await poll(KillingClient(rtorrent), config)
    assert "files deleted" in one_result(logs, info_hash)["reason"]
    rtorrent.start()
    assert {info_hash: (0, 0)} == state(rtorrent)  # the stopped state was saved

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config)

    assert {} == state(rtorrent)
    assert not torrent.payload_path.exists()
    canaries.check()


async def test_no_deletion_when_the_session_directory_cannot_be_seen(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, canaries: Canaries
) -> None:
    # rtorrentd reads the torrent's exact names from its metainfo in rtorrent's
    # session directory (and confirms 0.16's background saves there). Here it cannot
    # see it (as for an rtorrent in another container): nothing may be deleted, and
    # the torrent is refused before it is even stopped.
    dl = rtorrent.download_dir
    torrent = album(torrent_factory, dl)
    info_hash = load_doomed(rtorrent, torrent)
    rtorrent.session_dir.rename(rtorrent.root / "session-elsewhere")
    canaries.keep(contents(torrent))

    with capture_logs() as logs:
        await poll(client_for(rtorrent), config_for(rtorrent, [dl]))

    event = one_result(logs, info_hash)
    assert ("action.refused", 0) == (event["event"], event["freed_bytes"])
    assert "metainfo is not in rtorrent's session directory" in event["reason"]
    assert {info_hash: (1, 1)} == state(rtorrent)  # still seeding
    assert not events(logs, "action.deleting")
    canaries.check()
