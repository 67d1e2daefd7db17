"""The `trash` action's last step: a planned deletion's files renamed into a new bin
entry, with the torrent's .torrent and what `trash restore` needs.

Everything before this is `delete`'s (exact names, shared files kept, content
check, refusals, journal, stop, close, session saved); `carry_out` then hands each
checked file to the entry (`EntryWriter.take`) instead of unlinking it, and prunes
the emptied directories as for a deletion. An entry is all or nothing: when a file
cannot be moved (it changed, or the bin is on another filesystem), every file
already moved goes back and the step fails, as a deletion does, for the next poll.
"""

from __future__ import annotations

import functools
import os
import posixpath
import time
from dataclasses import dataclass

import anyio.to_thread

from rtorrentd.deletion import trash
from rtorrentd.deletion.carry_out import carry_out
from rtorrentd.deletion.model import Deletion, Fate, Outcome
from rtorrentd.errors import MetainfoError, UnsafeDeletion
from rtorrentd.protocol.bencode import decode
from rtorrentd.protocol.metainfo import parse_metainfo

_MAX_SESSION_FILE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Trashed:
    """What moving a torrent's files into the bin did: the entry (None when it was
    rolled back) and `carry_out`'s outcome."""

    entry: trash.Entry | None
    outcome: Outcome


def check_bin(bin_dir: str, deletion: Deletion) -> None:
    """Refuse, before anything is stopped, a bin that cannot take these files by
    rename: on another filesystem than the allowed root holding them."""
    moving = [f for f in deletion.files if f.fate is Fate.UNLINK]
    if not moving:
        return
    problem = trash.same_filesystem_problem(bin_dir, moving[0].location.anchor)
    if problem:
        raise UnsafeDeletion(
            f"refusing to trash {deletion.root!r}: {problem}; set [trash] path to a "
            "directory on that filesystem (nothing was moved, copied or stopped)"
        )


def session_files(session_dir: str, info_hash: str) -> tuple[bytes, dict[bytes, object]]:
    """The torrent's metainfo (checked to be this torrent's) and rtorrent's session
    record of it (custom fields, state), from rtorrent's session directory."""
    stem = posixpath.join(session_dir, f"{info_hash.upper()}.torrent")
    metainfo = _read(stem)
    try:
        parse_metainfo(metainfo, info_hash)
        record = decode(_read(stem + ".rtorrent"))
    except MetainfoError as exc:
        raise UnsafeDeletion(f"refusing to trash {info_hash}: {exc}; retry later") from exc
    return metainfo, dict(record) if isinstance(record, dict) else {}


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(_MAX_SESSION_FILE)
    except OSError as exc:
        why = f"rtorrent's session file {path!r} cannot be read ({exc.strerror})"
        raise UnsafeDeletion(f"refusing to trash: {why}; it is what restore needs") from exc


def torrent_record(
    info_hash: str,
    name: str,
    deletion: Deletion,
    session: dict[bytes, object],
    *,
    multi_file: bool,
    started: bool,
) -> trash.TorrentRecord:
    """What `trash restore` needs, from the plan and rtorrent's session record."""
    custom: list[tuple[str, str]] = []
    fields = session.get(b"custom")
    if isinstance(fields, dict):
        custom += [(os.fsdecode(k), _text(v)) for k, v in fields.items()]
    for slot in ("custom2", "custom3", "custom4", "custom5"):
        value = _text(session.get(slot.encode()))
        if value:
            custom.append((slot, value))
    label = _text(session.get(b"custom1"))
    kept = deletion.kept_shared
    return trash.TorrentRecord(
        info_hash, name, deletion.root, multi_file, label, tuple(custom), started, kept
    )


def _text(value: object) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else ""


@dataclass(frozen=True, slots=True)
class Job:
    """One torrent to trash: the bin, what restore needs, and why (the rule)."""

    bin_dir: str
    record: trash.TorrentRecord
    metainfo: bytes
    reason: str


def in_bin_since(bin_dir: str, info_hash: str, began: float) -> bool:
    """Whether the bin holds an entry of this torrent made since `began` (a crash
    after the entry was committed, before the erase)."""
    found = trash.entries(bin_dir)
    return any(e.hash == info_hash and e.manifest.created >= began for e in found)


async def move(job: Job, deletion: Deletion) -> Trashed:
    """`move_files` in a worker thread (thousands of renames), never abandoned."""
    run = functools.partial(move_files, job, deletion, time.time())
    return await anyio.to_thread.run_sync(run, abandon_on_cancel=False)


def move_files(job: Job, deletion: Deletion, now: float) -> Trashed:
    """Rename the planned files into a new entry. The entry is written ahead with
    every file it will hold; it is committed only if every file moved, else rolled
    back. Raises TrashError when the bin cannot be written."""
    moving = [f for f in deletion.files if f.fate is Fate.UNLINK and f.identity is not None]
    anchor = moving[0].location if moving else None
    root, key = (anchor.anchor, anchor.anchor_key) if anchor else (deletion.root, (0, 0))
    items = tuple(
        trash.Item.planned("/".join(f.location.parts), f.identity, f.freed)
        for f in moving
        if f.identity is not None
    )
    record = job.record
    draft = trash.Manifest("torrent", now, job.reason, root, key, items, record)
    with trash.create_entry(job.bin_dir, draft, record.hash[:8].lower()) as writer:
        writer.write_metainfo(job.metainfo)
        outcome = carry_out(deletion, writer.take)
        entry = writer.commit() if outcome.complete else None
    return Trashed(entry, outcome)
