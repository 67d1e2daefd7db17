"""The disk, at the edge: free space, devices, and each listed file as found on disk.

The engine decides from values (`space.Disk`, `facts.Files`); this module makes
them with `statvfs`, `stat` and `lstat`, and asks rtorrent for file lists only
for the torrents the engine names (`engine.files_wanted`).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Collection, Mapping, Sequence

import anyio.to_thread

from rtorrentd.config.model import SpacePolicy
from rtorrentd.engine.facts import FileFact, file_path
from rtorrentd.engine.space import Disk, Filesystem
from rtorrentd.logger import get_logger
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import FileEntry, Torrent

log = get_logger("rtorrentd.deletion.disk")

StatVfs = Callable[[str], os.statvfs_result]


def measure(
    policies: Sequence[SpacePolicy],
    torrents: Sequence[Torrent],
    statvfs: StatVfs = os.statvfs,
) -> Disk:
    """Free bytes and device of each policy's path; the device of each torrent's
    data only when some filesystem is low (otherwise nothing reads it).

    Free bytes are `f_bavail * f_frsize`: what an unprivileged writer such as
    rtorrent can still use. A path that cannot be measured is left out (logged):
    its policy does nothing this poll.
    """
    filesystems: dict[str, Filesystem] = {}
    for policy in policies:
        try:
            vfs = statvfs(policy.path)
            device = os.stat(policy.path).st_dev
        except OSError as exc:
            log.warning("space.unmeasured", path=policy.path, error=str(exc))
            continue
        filesystems[policy.path] = Filesystem(vfs.f_bavail * vfs.f_frsize, device)
    low = any(p.path in filesystems and filesystems[p.path].free < p.min_free for p in policies)
    return Disk(filesystems, devices(torrents) if low else {})


def devices(torrents: Sequence[Torrent]) -> dict[str, int]:
    """Info-hash to the device of the directory holding the torrent's data (the
    download directory: the parent of `path`), one stat per distinct directory."""
    known: dict[str, int | None] = {}
    found: dict[str, int] = {}
    for torrent in torrents:
        if not torrent.path:
            continue
        parent = posixpath.dirname(torrent.path)
        if parent not in known:
            known[parent] = _device(parent)
        device = known[parent]
        if device is not None:
            found[torrent.hash] = device
    return found


def _device(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None  # not there (moved, unmounted): on no policy's filesystem


async def read_files(
    client: RtorrentClient, torrents: Mapping[str, Torrent], hashes: Collection[str]
) -> dict[str, tuple[FileFact, ...]]:
    """The files of `hashes` (batched `f.multicall`s), each `lstat`ed. A torrent
    that left rtorrent meanwhile has no files: it frees nothing, shares nothing."""
    wanted = [h for h in hashes if h in torrents]
    listed = await client.all_files(wanted)
    return await anyio.to_thread.run_sync(_examine, torrents, listed, wanted)


def _examine(
    torrents: Mapping[str, Torrent],
    listed: Mapping[str, tuple[FileEntry, ...]],
    hashes: Sequence[str],
) -> dict[str, tuple[FileFact, ...]]:
    found: dict[str, tuple[FileFact, ...]] = dict.fromkeys(hashes, ())
    for info_hash, entries in listed.items():
        directory = torrents[info_hash].directory
        if directory and directory.startswith("/"):
            found[info_hash] = tuple(file_fact(file_path(directory, e.path)) for e in entries)
    return found


def file_fact(path: str) -> FileFact:
    """One file as `lstat` finds it; a missing or unreadable one holds nothing."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return FileFact(path, 0, None, 0, regular=False)
    return fact_of(path, st)


def fact_of(path: str, st: os.stat_result) -> FileFact:
    """The `FileFact` that `st`, an lstat of `path`, makes."""
    regular = stat.S_ISREG(st.st_mode)
    return FileFact(path, st.st_size, (st.st_dev, st.st_ino), st.st_nlink, regular)
