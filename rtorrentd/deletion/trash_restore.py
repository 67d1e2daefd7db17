"""Restoring a bin entry: its paths back where they were, a torrent back into rtorrent.

Order, crash-safe like making an entry (`trash`): the entry is locked, every
place checked free (anything there refuses the whole restore), the manifest
renamed to `manifest.restoring` (fsync'd), the paths renamed back (never over
anything: renameat2 NOREPLACE), then, for a torrent, its .torrent loaded into
rtorrent stopped, its directory, label and custom fields set, a hash check run,
and started if it was; only then is the entry removed. A failure before the
torrent is loaded takes the paths back into the bin. A crash is finished by
`trash_entry.recover_restoring` at the next poll: the torrent loaded means the restore got
that far (the rest of the paths go back, the entry goes), otherwise the paths
go back into the bin and the entry is complete again.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

import anyio
import anyio.to_thread

from rtorrentd.deletion import trash_model as trash
from rtorrentd.deletion.trash_entry import (
    discard,
    held,
    move_back,
    occupied,
    set_state,
    take_back,
)
from rtorrentd.errors import RpcError, TrashError, UnknownTorrent
from rtorrentd.logger import get_logger
from rtorrentd.rtorrent.client import RtorrentClient

log = get_logger("rtorrentd.deletion.trash")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore did: the entry, the paths put back, and for a torrent whether
    rtorrent found it complete after its hash check and whether it runs."""

    entry: trash.Entry
    paths: tuple[str, ...]
    complete: bool | None = None
    started: bool | None = None


def _put_back_all(entry: trash.Entry) -> tuple[str, ...]:
    """Every path back at its place, or none (what went back is taken back)."""
    done = []
    for item in entry.manifest.items:
        why = move_back(entry, item)
        if why:
            take_back(entry)
            raise TrashError(f"cannot put {item.path!r} back: {why}; nothing was restored")
        done.append(posixpath.join(entry.manifest.root, item.path))
    return tuple(done)


def _finish(entry: trash.Entry) -> None:
    discard(trash.Entry(entry.bin, entry.name, entry.manifest, entry.state))


def restore_paths(entry: trash.Entry) -> Restored:
    """Restore an entry's paths (an orphan entry: that is all of it). Raises
    TrashError when anything is at one of their places, or the entry is busy."""
    with held(entry.path) as fd:
        if fd is None:
            raise TrashError(f"the bin entry {entry.name} is in use by another process")
        busy = occupied(entry)
        if busy:
            raise TrashError(f"refusing to restore {entry.name}: already there: {', '.join(busy)}")
        restoring = set_state(entry, trash.RESTORING)
        try:
            paths = _put_back_all(restoring)
        except BaseException:
            set_state(restoring, trash.COMPLETE)
            raise
    _finish(restoring)
    log.info("trash.restored", entry=entry.name, kind=entry.manifest.kind, paths=len(paths))
    return Restored(entry, paths)


async def restore_torrent(client: RtorrentClient, entry: trash.Entry) -> Restored:
    """Restore a torrent entry: its files back, then the torrent into rtorrent
    (directory, label, custom fields), hash-checked, started if it was. Refuses
    when rtorrent has the torrent loaded or anything is at one of its places."""
    record = entry.manifest.torrent
    if record is None:
        return await anyio.to_thread.run_sync(restore_paths, entry)
    try:
        await client.call("d.hash", record.hash)
    except UnknownTorrent:
        pass
    else:
        raise TrashError(f"refusing to restore {record.name!r}: rtorrent has {record.hash} loaded")
    _check_sendable(record)
    metainfo = await anyio.to_thread.run_sync(_read_metainfo, entry)
    with held(entry.path) as fd:
        if fd is None:
            raise TrashError(f"the bin entry {entry.name} is in use by another process")
        busy = occupied(entry)
        if busy:
            raise TrashError(
                f"refusing to restore {record.name!r}: already there: {', '.join(busy)}"
            )
        restoring = set_state(entry, trash.RESTORING)
        try:
            paths = await anyio.to_thread.run_sync(_put_back_all, restoring)
        except BaseException:
            set_state(restoring, trash.COMPLETE)
            raise
        try:
            await _load(client, record, metainfo)
        except BaseException:
            await anyio.to_thread.run_sync(take_back, restoring)
            set_state(restoring, trash.COMPLETE)
            raise
    _finish(restoring)
    complete, started = await _settle(client, record)
    log.info(
        "trash.restored",
        entry=entry.name,
        kind="torrent",
        hash=record.hash,
        name=record.name,
        paths=len(paths),
        complete=complete,
        started=started,
    )
    return Restored(entry, paths, complete, started)


def _check_sendable(record: trash.TorrentRecord) -> None:
    texts = (record.directory, record.label, *(v for _, v in record.custom))
    if any(not _utf8(t) for t in texts):
        raise TrashError(
            f"refusing to restore {record.name!r}: its directory or a custom field is not "
            "UTF-8, which XML-RPC cannot carry; put the files back by hand"
        )


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_metainfo(entry: trash.Entry) -> bytes:
    try:
        with open(os.path.join(entry.path, trash.METAINFO), "rb") as file:
            return file.read()
    except OSError as exc:
        raise TrashError(f"the bin entry {entry.name} has no readable .torrent ({exc})") from exc


async def _load(client: RtorrentClient, record: trash.TorrentRecord, metainfo: bytes) -> None:
    """Load the torrent stopped, then set where and what it is, then hash-check it."""
    await client.call("load.raw", "", metainfo)
    with anyio.fail_after(30):
        while True:
            try:
                await client.call("d.hash", record.hash)
                break
            except UnknownTorrent:
                await anyio.sleep(0.02)
    where = "d.directory_base.set" if record.multi_file else "d.directory.set"
    await client.call(where, record.hash, record.directory)
    await client.call("d.custom1.set", record.hash, record.label)
    for key, value in record.custom:
        if key.startswith("custom") and key[6:] in ("2", "3", "4", "5"):
            await client.call(f"d.{key}.set", record.hash, value)
        else:
            await client.call("d.custom.set", record.hash, key, value)
    await client.call("d.check_hash", record.hash)


async def _settle(client: RtorrentClient, record: trash.TorrentRecord) -> tuple[bool, bool]:
    """Wait for the hash check, start the torrent if it was started; whether it is
    complete, and whether it runs."""
    with anyio.fail_after(600):
        while True:
            hashing, checked = await client.values(record.hash, ("d.hashing", "d.is_hash_checked"))
            if not hashing and checked:
                break
            await anyio.sleep(0.05)
    (complete,) = await client.values(record.hash, ("d.complete",))
    if record.started:
        await client.call("d.start", record.hash)
    try:  # the restore is done; a slow session disk only delays rtorrent's own save
        await client.save_session(record.hash)
    except RpcError as exc:
        log.warning("session.not_saved", hash=record.hash, reason=str(exc))
    (state,) = await client.values(record.hash, ("d.state",))
    return bool(complete), bool(state)
