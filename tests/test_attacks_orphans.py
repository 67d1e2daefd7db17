"""Attacks on orphan cleanup, against real rtorrents (0.9.8 and 0.16) and real
files: every way an unlucky user or an attacker could make a scan take for an
orphan (or move) what a torrent still uses, or what rtorrent and rtorrentd own.

Times as in test_orphans: files get an old mtime with `os.utime`; their ctime
cannot be set, so scans that must find orphans run three days ahead (`later`).
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from flow import album, client_for
from harness import RtorrentProcess, TorrentFactory, poll_until
from test_guards import fast_resumed, hashing
from test_orphans import scan_in_namespace

from rtorrentd.config.load import parse_config
from rtorrentd.config.model import OrphanSettings
from rtorrentd.deletion.model import Identity
from rtorrentd.deletion.orphan_listing import Source
from rtorrentd.deletion.orphans import Cleaned, Moved, Scan, clean, scan
from rtorrentd.errors import ConfigError
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.rtorrent.transport import open_transport

DAY = 86400.0
SETTINGS = OrphanSettings(min_age=DAY)


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


def raw(directory: Path, name: bytes) -> Path:
    """`directory / name` for a name that is not UTF-8 (or holds CR)."""
    return Path(os.fsdecode(os.path.join(os.fsencode(directory), name)))


class Bin:
    """A stand-in for the recycle bin: renames each path (if still the entry the
    re-check saw) below `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.moved: list[str] = []

    def __call__(self, root: str, items: Sequence[tuple[str, Identity]]) -> Moved:
        moved, left = [], []
        for path, identity in items:
            if Identity.of(os.lstat(path)) != identity:
                left.append((path, "changed"))
                continue
            target = os.path.join(
                os.fsencode(self.directory), os.fsencode(path)[len(os.fsencode(root)) + 1 :]
            )
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(path, target)
            moved.append(path)
        self.moved += moved
        return moved, left


def source(rt: RtorrentProcess, label: str = "this") -> Source:
    return Source(label, rt.scgi_url, client_for(rt))


async def scan_and_clean(
    sources: Sequence[Source],
    roots: Sequence[Path],
    bin_: Bin,
    *,
    settings: OrphanSettings = SETTINGS,
    clock: Callable[[], float] = later,
    owned: Sequence[str] = (),
    between: Callable[[], None] = lambda: None,
) -> tuple[Scan, list[Cleaned]]:
    """A scan, then `between` (what happens meanwhile), then the re-check and move."""
    found, listing = await scan(
        sources, [str(r) for r in roots], settings, now=clock(), owned=owned
    )
    between()
    if listing is None:
        return found, []
    return found, await clean(found, listing, settings, bin_, clock=clock)


def paths(found: Scan) -> set[str]:
    return {o.seen.path for o in found.orphans}


def album_files(directory: Path) -> list[Path]:
    return [directory / "a.bin", directory / "cd2" / "b.bin", directory / "cd2" / "deep" / "c.bin"]


def stop_and_close(rt: RtorrentProcess, info_hash: str) -> None:
    rt.call("d.stop", info_hash)
    rt.call("d.close", info_hash)


# --- a torrent whose files are not (all) where its directory says -----------------------------


@pytest.mark.anyio
async def test_data_moved_before_its_stopped_torrent_is_re_pointed_is_not_an_orphan(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # ruTorrent's datadir plugin (and users by hand): stop, close, mv the data, then
    # d.directory.set. A scan in between must not take the moved data for orphans:
    # renaming a directory leaves the ctime of the files inside it as it was.
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    info_hash = rtorrent.load(seeded, complete=True)
    stop_and_close(rtorrent, info_hash)
    (dl / "new-place").mkdir()
    os.rename(dl / "Album", dl / "new-place" / "Album")
    moved = album_files(dl / "new-place" / "Album")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert not {str(p) for p in moved} & paths(found), found
    assert [] == bin_.moved and all(p.exists() for p in moved)
    assert info_hash in found.refused and "not on disk" in found.refused


@pytest.mark.anyio
async def test_part_of_a_complete_torrent_moved_elsewhere_is_not_an_orphan(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # A started torrent, one of its files moved (same filesystem: same inode, old
    # ctime of its contents): rtorrent still has it open; the listing cannot be told.
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    info_hash = rtorrent.load(seeded, complete=True)
    (dl / "elsewhere").mkdir()
    os.rename(dl / "Album" / "cd2", dl / "elsewhere" / "cd2")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert not any("elsewhere" in p for p in paths(found)), found
    assert [] == bin_.moved and (dl / "elsewhere" / "cd2" / "deep" / "c.bin").exists()
    assert info_hash in found.refused


@pytest.mark.anyio
async def test_a_directory_set_on_an_open_torrent_refuses_the_scan(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    seeded = torrent_factory("single.bin", b"one file, open in rtorrent", dest_dir=dl)
    info_hash = rtorrent.load(seeded, complete=True)
    (dl / "target").mkdir()
    rtorrent.call("d.stop", info_hash)  # still open: d.directory.set works on it
    rtorrent.call("d.directory.set", info_hash, str(dl / "target"))
    assert str(dl / "single.bin") == rtorrent.call("d.base_path", info_hash)
    bin_ = Bin(tmp_path / "bin")

    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "a move under way" in found.refused and info_hash in found.refused
    assert [] == done and (dl / "single.bin").exists()


# --- symlinks and two paths to one file ----------------------------------------------------


@pytest.mark.anyio
async def test_a_symlinked_download_dir_and_allowed_root_keep_the_torrents_files(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # rtorrent sees the data through one link, the configuration names the root
    # through another: paths never match, identities do.
    real = tmp_path / "disk" / "real"
    real.mkdir(parents=True)
    (tmp_path / "as-rtorrent-sees-it").symlink_to(real)
    (tmp_path / "as-configured").symlink_to(real)
    seen_by_rtorrent = tmp_path / "as-rtorrent-sees-it"
    seeded = album(torrent_factory, seen_by_rtorrent, name="Album")
    single = torrent_factory("single.bin", b"a single file", dest_dir=seen_by_rtorrent)
    rtorrent.load(seeded, complete=True)
    rtorrent.load(single, complete=True)
    orphan = old(real / "old.mkv")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [tmp_path / "as-configured"], bin_)

    assert "" == found.refused
    assert {str(orphan)} == paths(found)
    assert [str(orphan)] == bin_.moved
    assert all(p.exists() for p in [*album_files(real / "Album"), real / "single.bin"])


@pytest.mark.anyio
async def test_a_torrent_directory_linked_into_another_root_keeps_link_and_data(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    first, second = tmp_path / "root1", tmp_path / "root2"
    first.mkdir()
    seeded = album(torrent_factory, second, name="Album")
    (first / "Album").symlink_to(second / "Album")  # d.directory is the link
    old(first / "Album", b"")
    rtorrent.load(seeded, complete=True, directory=first)
    # A second way to one file: a symlinked parent directory inside the same root.
    (second / "view").symlink_to(second / "Album" / "cd2")
    old(second / "view", b"")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [first, second], bin_)

    assert "" == found.refused
    assert {str(second / "view")} == paths(found)  # an unlisted link: the link goes
    assert (first / "Album").is_symlink()
    assert all(p.exists() for p in album_files(second / "Album"))


@pytest.mark.anyio
async def test_symlinks_loops_and_dangling_links_are_links_never_followed(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = old(outside / "precious.bin", b"never under an allowed root")
    (dl / "loop-a").symlink_to(dl / "loop-b")
    (dl / "loop-b").symlink_to(dl / "loop-a")
    (dl / "dangling").symlink_to(tmp_path / "nothing-here")
    (dl / "to-outside-dir").symlink_to(outside)
    (dl / "to-root").symlink_to(dl)
    links = [dl / n for n in ("loop-a", "loop-b", "dangling", "to-outside-dir", "to-root")]
    for link in links:
        old(link, b"")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert {str(p) for p in links} == paths(found)
    assert sorted(str(p) for p in links) == sorted(bin_.moved)
    assert all((tmp_path / "bin" / p.name).is_symlink() for p in links)
    assert b"never under an allowed root" == precious.read_bytes()


# --- names rtorrent mangles ---------------------------------------------------------------

ODD_NAMES = (
    b"caf\xe9.bin",  # latin-1: 0.9.8 '?', 0.16 '%E9'
    b"carriage\rreturn.bin",  # CR: shown as LF
    b"literal%41.bin",  # a literal %XX: 0.16 leaves it, the client reads '?'
    b"what?.bin",  # a literal '?'
    b"emoji-\xf0\x9f\x98\x80.bin",  # 4 bytes: 0.9.8 '????'
    b"nonchar-\xef\xbf\xbe.bin",  # U+FFFE: 0.9.8 '???'
    b"percent% off.bin",
)


@pytest.mark.anyio
async def test_files_whose_shown_names_are_not_their_names_are_never_orphans(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    payload: dict[str | bytes, bytes] = {name: name + b" data" for name in ODD_NAMES}
    payload[b"dir-\xff\r/inner\n\xfe.bin"] = b"in a mangled directory"
    multi = torrent_factory(b"Mangled \xe9\r%41?", payload, dest_dir=dl)
    rtorrent.load(multi, complete=True)
    singles = [
        torrent_factory(b"single-" + name, b"single " + name, dest_dir=dl) for name in ODD_NAMES
    ]
    for single in singles:
        rtorrent.load(single, complete=True)
    listed = [raw(dl / os.fsdecode(multi.name), os.fsencode(p)) for p in payload]
    listed += [raw(dl, s.name if isinstance(s.name, bytes) else s.name.encode()) for s in singles]
    for path in listed:
        old(path, b"")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "" == found.refused, found.refused
    assert set() == paths(found) & {str(p) for p in listed}
    assert [] == bin_.moved
    assert all(p.exists() for p in listed)


@pytest.mark.anyio
async def test_an_unlisted_lookalike_of_a_listed_mangled_name_is_kept_too(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # rtorrent shows caf\xe9 and caf\xe8 alike: which one it lists cannot be told,
    # so neither goes; a name it could not show so is an orphan as usual.
    dl = rtorrent.download_dir
    latin = torrent_factory(b"caf\xe9.bin", b"listed", dest_dir=dl)
    rtorrent.load(latin, complete=True)
    old(raw(dl, b"caf\xe9.bin"), b"")
    lookalikes = [old(raw(dl, n)) for n in (b"caf\xe8.bin", b"caf?.bin", b"caf%E9.bin")]
    unlike = old(raw(dl, b"cafe.bin"))
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert {str(unlike)} == paths(found)
    assert all(p.exists() for p in lookalikes)


# --- single-file and multi-file torrents at an allowed root ---------------------------------


@pytest.mark.anyio
async def test_torrents_whose_directory_is_the_allowed_root_itself(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    single = torrent_factory("single.bin", b"a single file at the root", dest_dir=dl)
    rtorrent.load(single, complete=True)
    # A multi-file torrent without its own directory: its files lie in the root.
    flat = torrent_factory("flat", {"x.bin": b"x" * 100, "sub/y.bin": b"y" * 100}, dest_dir=dl)
    os.rename(dl / "flat" / "x.bin", dl / "x.bin")
    os.rename(dl / "flat" / "sub", dl / "sub")
    (dl / "flat").rmdir()
    rtorrent.load(flat, start=False, commands=(f"d.directory_base.set={dl}",))
    rtorrent.call("d.start", flat.info_hash)
    orphan = old(dl / "old.mkv")
    empty = dl / "empty"
    empty.mkdir()
    old(empty, b"")
    bin_ = Bin(tmp_path / "bin")

    def loaded_and_checked() -> bool:
        return bool(1 == rtorrent.call("d.complete", flat.info_hash))

    poll_until(loaded_and_checked, timeout=15, what="the flat torrent to be checked")
    assert str(dl) == rtorrent.call("d.directory", flat.info_hash)

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "" == found.refused
    assert {str(orphan), str(empty)} == paths(found)
    assert all(p.exists() for p in (dl / "single.bin", dl / "x.bin", dl / "sub" / "y.bin"))
    assert dl.is_dir()


# --- hard links and replaced files ------------------------------------------------------------


@pytest.mark.anyio
async def test_hard_links_and_a_listed_name_holding_another_inode(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    rtorrent.load(seeded, complete=True)
    (dl / "archive" / "deep").mkdir(parents=True)
    os.link(dl / "Album" / "cd2" / "b.bin", dl / "archive" / "deep" / "b-link.bin")
    # The listed name now holds another inode; the old inode lives on elsewhere.
    os.link(dl / "Album" / "a.bin", dl / "archive" / "old-a.bin")
    (dl / "Album" / "a.bin.new").write_bytes(b"another inode, same name")
    os.rename(dl / "Album" / "a.bin.new", dl / "Album" / "a.bin")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "" == found.refused
    assert str(dl / "archive" / "deep" / "b-link.bin") not in paths(found)
    assert str(dl / "Album" / "a.bin") not in paths(found)
    # The old inode is no listed file any more: an orphan (one link, none listed).
    assert {str(dl / "archive" / "old-a.bin")} == paths(found)
    assert (dl / "archive" / "deep" / "b-link.bin").exists() and (dl / "Album" / "a.bin").exists()


# --- other rtorrents ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_unlisted_rtorrent_with_closed_torrents_under_the_root_refuses_the_scan(
    rtorrent: RtorrentProcess,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    # Nobody configured it; its torrents are stopped (no file open), its working
    # directory is elsewhere: only its session directory under the root says so.
    dl = rtorrent.download_dir
    hidden = make_rtorrent(tmp_path / "hidden-home", clean_exit=False)
    hidden.session_dir = dl / "hidden-session"
    theirs = album(torrent_factory, dl, name="theirs")
    orphan = old(dl / "old.mkv")
    with hidden:
        info_hash = hidden.load(theirs, complete=True)
        stop_and_close(hidden, info_hash)
        bin_ = Bin(tmp_path / "bin")

        found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

        assert "hidden-session" in found.refused, found
        assert [] == bin_.moved
        assert orphan.exists() and all(p.exists() for p in album_files(dl / "theirs"))
        assert (dl / "hidden-session" / f"{info_hash}.torrent").exists()


class GarbageServer:
    """A real Unix socket server that answers every request with `reply`."""

    def __init__(self, path: Path, reply: bytes) -> None:
        self.path = path
        self.reply = reply
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def __enter__(self) -> GarbageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


def _http_reply(body: bytes) -> bytes:
    head = f"Status: 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


GARBAGE = (
    b"",
    b"not scgi at all",
    _http_reply(b"<html>502 bad gateway</html>"),
    _http_reply(
        b"<?xml version='1.0'?><methodResponse><params><param><value><string>"
        b"x</string></value></param></params></methodResponse>"
    ),
    _http_reply(
        b"<?xml version='1.0'?><methodResponse><params><param><value><array><data>"
        b"<value><i4>1</i4></value></data></array></value></param></params>"
        b"</methodResponse>"
    ),
)


@pytest.fixture
def garbage_dir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rtd-garbage-") as directory:
        yield Path(directory)  # short: a Unix socket path has at most 107 bytes


@pytest.mark.anyio
@pytest.mark.parametrize("reply", GARBAGE, ids=range(len(GARBAGE)))
async def test_an_instance_answering_garbage_refuses_the_whole_scan(
    rtorrent: RtorrentProcess, tmp_path: Path, garbage_dir: Path, reply: bytes
) -> None:
    dl = rtorrent.download_dir
    orphan = old(dl / "old.mkv")
    path = garbage_dir / "fake.sock"
    with GarbageServer(path, reply):
        fake = Source("fake", f"scgi://{path}", RtorrentClient(open_transport(f"scgi://{path}")))
        bin_ = Bin(tmp_path / "bin")

        found, done = await scan_and_clean([source(rtorrent), fake], [dl], bin_)

    assert found.refused.startswith("fake "), found.refused
    assert [] == done and orphan.exists()


# --- torrents busy or loaded meanwhile ----------------------------------------------------


@pytest.mark.anyio
async def test_a_torrent_being_hash_checked_refuses_the_scan(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    info_hash, data = fast_resumed(dl / "checked")
    rtorrent.call(
        "load.raw_start", "", xmlrpc.client.Binary(data), f"d.directory.set={dl / 'checked'}"
    )
    poll_until(lambda: info_hash in rtorrent.hashes(), timeout=15, what="listed")
    poll_until(lambda: rtorrent.session_saved(info_hash), timeout=15, what="its session files")
    orphan = old(dl / "old.mkv")
    rtorrent.call("d.check_hash", info_hash)
    poll_until(lambda: hashing(rtorrent, info_hash) != 0, timeout=15, what="the check to start")

    found, done = await scan_and_clean([source(rtorrent)], [dl], Bin(tmp_path / "bin"))

    assert hashing(rtorrent, info_hash) != 0, "the check ended before the scan: make BIG larger"
    assert "is being hash-checked" in found.refused and info_hash in found.refused
    assert [] == done and orphan.exists() and (dl / "checked" / "big.bin").exists()
    rtorrent.call("d.erase", info_hash)  # no need to wait for the check


@pytest.mark.anyio
async def test_torrents_loaded_stopped_between_scan_and_move_keep_their_files(
    rtorrent: RtorrentProcess,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    # A torrent added stopped (not hash-checked, d.complete 0) onto data already
    # there, by this rtorrent or another one, while the scan ran.
    dl = rtorrent.download_dir
    ours = album(torrent_factory, dl, name="ours-later", seed=10)
    theirs = album(torrent_factory, dl, name="theirs-later", seed=20)
    files = [*album_files(dl / "ours-later"), *album_files(dl / "theirs-later")]
    untouched = old(dl / "untouched.mkv")
    with make_rtorrent(tmp_path / "other", clean_exit=False) as other:

        def meanwhile() -> None:
            rtorrent.load(ours, start=False)
            other.load(theirs, start=False)

        bin_ = Bin(tmp_path / "bin")
        found, done = await scan_and_clean(
            [source(rtorrent), source(other, "other")], [dl], bin_, between=meanwhile
        )

    assert {str(p) for p in files} <= paths(found)  # orphans when the scan ran
    outcome = {c.orphan.seen.path: (c.result, c.detail) for c in done}
    assert ("moved", "") == outcome.pop(str(untouched))
    assert {"kept"} == {result for result, _ in outcome.values()}
    assert [str(untouched)] == bin_.moved
    assert all(p.exists() for p in files)


@pytest.mark.anyio
async def test_an_old_file_chmodded_or_renamed_into_place_just_now_is_young(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    chmodded = old(dl / "chmodded.mkv")  # touch -d: old mtime ...
    chmodded.chmod(0o600)  # ... but a new ctime
    staged = old(tmp_path / "staging" / "renamed.mkv")
    os.rename(staged, dl / "renamed.mkv")  # mv keeps the mtime; the ctime is new
    linked = old(tmp_path / "staging" / "linked.mkv")
    os.link(linked, dl / "linked.mkv")

    found, done = await scan_and_clean(
        [source(rtorrent)], [dl], Bin(tmp_path / "bin"), clock=time.time
    )

    assert "" == found.refused and set() == paths(found) and [] == done
    assert all((dl / n).exists() for n in ("chmodded.mkv", "renamed.mkv", "linked.mkv"))


# --- what rtorrent and rtorrentd own, under an allowed root --------------------------------


@pytest.mark.anyio
async def test_sessions_sockets_configuration_state_and_bin_under_a_root_stay(
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    root = tmp_path / "srv"
    home = make_rtorrent(tmp_path / "home", clean_exit=False)
    home.session_dir = root / ".session"  # rtorrent's session under the root
    seeded = album(torrent_factory, root / "dl", name="Album")
    state = old(root / "state" / "deleting" / "ABC.json", b"{}")
    in_bin = old(root / "trash" / "2024-01-01" / "movie.mkv")
    config = old(root / "etc" / "rtorrentd.toml", b"[rtorrent]\n")
    stray = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    short = tempfile.mkdtemp(prefix="rtd-sock-")
    os.symlink(root, os.path.join(short, "r"))  # a socket path has at most 107 bytes
    stray.bind(os.path.join(short, "r", "rpc.socket"))
    orphan = old(root / "dl" / "old.mkv")
    try:
        with home:
            info_hash = home.load(seeded, complete=True)
            session_files = list((root / ".session").iterdir())
            for path in session_files:
                old(path, b"")
            bin_ = Bin(tmp_path / "bin")

            found, _done = await scan_and_clean(
                [source(home)],
                [root],
                bin_,
                owned=[str(config), str(root / "state"), str(root / "trash")],
            )
    finally:
        stray.close()
        os.unlink(os.path.join(short, "r"))
        os.rmdir(short)

    assert "" == found.refused, found.refused
    assert {str(orphan)} == paths(found)
    assert [str(orphan)] == bin_.moved
    assert f"{info_hash}.torrent" in {p.name for p in session_files}
    assert all(p.exists() for p in (*session_files, config, state, in_bin))
    assert (root / "rpc.socket").exists()


# --- mounts ----------------------------------------------------------------------------

# scan_in_namespace: tests/test_orphans.py (one script for both files).


@pytest.mark.usefixtures("mount_namespace")
def test_a_listed_file_seen_again_through_a_bind_mount_is_never_walked_there(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory
) -> None:
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    rtorrent.load(seeded, complete=True)
    (dl / "view").mkdir()

    result = scan_in_namespace(
        rtorrent,
        dl,
        before=[["mount", "--bind", str(dl / "Album"), str(dl / "view")]],
        orphans=[str(dl / "old.mkv")],
    )

    assert "" == result["refused"]
    assert [str(dl / "old.mkv")] == result["orphans"]


@pytest.mark.usefixtures("mount_namespace")
def test_a_disk_unmounted_before_the_daemon_started_leaves_its_torrents_refusing(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    # The daemon remembers the root's filesystem at start: if the disk was already
    # gone then, the empty mount point is what it remembers. The stopped, complete
    # torrents whose data is on the disk still say something is wrong.
    disk = tmp_path / "disk"
    seeded = album(torrent_factory, disk, name="Album")
    info_hash = rtorrent.load(seeded, complete=True)
    stop_and_close(rtorrent, info_hash)
    for path in album_files(disk / "Album"):
        path.unlink()  # what is left of an unmounted disk: its mount point
    result = scan_in_namespace(rtorrent, disk, orphans=[str(disk / "under-the-mount-point.mkv")])

    assert info_hash in str(result["refused"])
    assert [] == result["orphans"]


# --- caps and globs ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_max_files_and_max_bytes_hold_the_rest_for_later_scans(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    for number in range(5):
        old(dl / f"f{number}.bin", b"x" * 60)
    settings = OrphanSettings(min_age=DAY, max_files=3, max_bytes=150)
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_, settings=settings)

    assert 2 == len(found.orphans) and 120 == found.bytes  # a third would exceed 150 bytes
    assert (3, 180) == (found.held, found.held_bytes)
    assert 2 == len(bin_.moved) and 3 == len(list(dl.iterdir()))
    settings = OrphanSettings(min_age=DAY, max_files=1, max_bytes=10**9)
    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_, settings=settings)
    assert 1 == len(found.orphans) and 2 == found.held and 3 == len(bin_.moved)


GLOBS = (
    "./kept-by-dot/**",  # "./" as a user writes it: from the root
    "cache/./inner",
    "**/deep-cache",
    "[[]brackets]/**",
    "name (1).mkv",
    ".*",
    "/top-only.mkv",
    "a/**/b",
)


@pytest.mark.anyio
async def test_exclude_globs_keep_what_they_name_and_nothing_else(
    rtorrent: RtorrentProcess, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    kept = [
        old(dl / "kept-by-dot" / "x.bin"),
        old(dl / "cache" / "inner"),
        old(dl / "deep-cache"),
        old(dl / "p" / "q" / "deep-cache" / "file"),
        old(dl / "[brackets]" / "x"),
        old(dl / "d" / "name (1).mkv"),
        old(dl / ".hidden"),
        old(dl / "d" / ".stfolder" / "marker"),
        old(dl / "top-only.mkv"),
        old(dl / "a" / "b"),
        old(dl / "a" / "x" / "y" / "b"),
    ]
    gone = [
        old(dl / "d" / "kept-by-dot" / "x.bin"),  # "./" anchors at the root
        old(dl / "b" / "x"),  # not [brackets]
        old(dl / "d" / "name 1.mkv"),
        old(dl / "d" / "top-only.mkv"),
        old(dl / "a" / "bb"),
    ]
    settings = OrphanSettings(min_age=DAY, exclude=GLOBS)
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_, settings=settings)

    assert {str(p) for p in gone} == paths(found)
    assert all(p.exists() for p in kept)


@pytest.mark.parametrize("glob", ["../elsewhere/**", "a/../b", ".", "./", "/./"])
def test_a_glob_that_names_no_path_under_a_root_is_a_config_error(glob: str) -> None:
    text = f'[rtorrent]\nurl = "scgi:///x"\n[orphans]\nexclude = ["{glob}"]\n'
    with pytest.raises(ConfigError, match="names no path under an allowed root"):
        parse_config(text, "x.toml")


# --- directories as rtorrent keeps them -------------------------------------------------------


@pytest.mark.anyio
async def test_a_torrent_directory_with_dotdot_keeps_its_files_a_relative_one_refuses(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    seeded = album(torrent_factory, dl, name="Album")
    (dl / "sub").mkdir()
    old(dl / "sub", b"")
    rtorrent.load(seeded, complete=True, directory=dl / "sub" / "..")  # kept as given
    assert "/sub/../" in rtorrent.call("d.base_path", seeded.info_hash) + "/"
    orphan = old(dl / "old.mkv")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "" == found.refused
    assert {str(orphan)} == paths(found)  # "sub" is on the way to the listed files
    assert all(p.exists() for p in album_files(dl / "Album"))

    relative = torrent_factory("rel.bin", b"a relative directory", dest_dir=dl)
    rtorrent.load(relative, start=False, directory=Path("relative/dir"))
    old(dl / "old2.mkv")

    found, done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "which is not absolute" in found.refused and relative.info_hash in found.refused
    assert [] == done and (dl / "old2.mkv").exists()


@pytest.mark.anyio
async def test_a_tied_torrent_file_under_the_root_is_listed(
    rtorrent: RtorrentProcess, torrent_factory: TorrentFactory, tmp_path: Path
) -> None:
    dl = rtorrent.download_dir
    seeded = torrent_factory("tied.bin", b"loaded from a file under the root", dest_dir=dl)
    watch = dl / "watch"
    watch.mkdir()
    tied = old(watch / "tied.torrent", seeded.data)
    rtorrent.call("load.start", "", str(tied), f"d.directory.set={dl}")
    poll_until(lambda: seeded.info_hash in rtorrent.hashes(), timeout=15, what="listed")
    poll_until(
        lambda: 1 == rtorrent.call("d.complete", seeded.info_hash), timeout=15, what="checked"
    )
    assert str(tied) == rtorrent.call("d.tied_to_file", seeded.info_hash)
    stray = old(watch / "never-loaded.torrent", b"d4:infode")
    bin_ = Bin(tmp_path / "bin")

    found, _done = await scan_and_clean([source(rtorrent)], [dl], bin_)

    assert "" == found.refused
    assert {str(stray)} == paths(found)
    assert tied.exists() and (dl / "tied.bin").exists()


@pytest.mark.anyio
async def test_an_unlisted_rtorrent_seeding_from_the_root_refuses_the_scan(
    rtorrent: RtorrentProcess,
    make_rtorrent: Callable[..., RtorrentProcess],
    torrent_factory: TorrentFactory,
    tmp_path: Path,
) -> None:
    # Its session and working directory are elsewhere; only its open files tell.
    dl = rtorrent.download_dir
    theirs = album(torrent_factory, dl, name="theirs")
    with make_rtorrent(tmp_path / "unlisted-home", clean_exit=False) as unlisted:
        unlisted.load(theirs, complete=True)
        bin_ = Bin(tmp_path / "bin")

        found, done = await scan_and_clean([source(rtorrent)], [dl], bin_)

        assert f"pid {unlisted.pid}" in found.refused, found.refused
        assert [] == done and all(p.exists() for p in album_files(dl / "theirs"))
