"""Exact names: every path rtorrentd stats, reads or unlinks is built from bytes
that name the torrent's own files, never from rtorrent's display strings.

rtorrent shows names with bytes replaced (`?`, `%XX`, LF for CR; RTORRENT.md,
"Names are lossy"), so a shown path may name another file, or none. The exact
bytes are in the torrent's metainfo, which rtorrent keeps as `<HASH>.torrent`
in its `session.path`: rtorrentd reads it, trusts it only when its info
dictionary hashes to the torrent, and matches each of its files to what
rtorrent lists (same count, order and sizes; every shown path must be one the
metainfo's bytes can be shown as). Display strings then serve logs and rules only.

`d.directory`, the one path the metainfo does not hold, is matched against the
disk component by component: a component shown without lossy characters is its
own bytes; any other must match exactly one entry of its parent directory (for a
multi-file torrent's own directory, one spelling of the torrent's name), else the
deletion is refused. When the exact names cannot be had (no session directory,
metainfo missing or unreadable, or not this torrent's) the deletion is refused
with a message that says how to make it possible: it is never guessed.

Content identity follows the plan: `verify` hashes a piece of every file to be
unlinked against the metainfo (`content.check_content`), through descriptors
opened on the planned entries themselves (`carry_out.open_planned`).
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath
import stat
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import anyio.to_thread

from rtorrentd.deletion.carry_out import open_planned
from rtorrentd.deletion.containment import BY_HAND, check_root, refuse
from rtorrentd.deletion.content import Verified, check_content
from rtorrentd.deletion.model import Deletion, Fate, PlannedFile
from rtorrentd.deletion.planning import plan_deletion
from rtorrentd.deletion.spelling import Spellings
from rtorrentd.errors import MetainfoError
from rtorrentd.protocol.metainfo import (
    Bitfield,
    Metainfo,
    bitfield_from_hex,
    bitfield_from_resume,
    parse_metainfo,
)
from rtorrentd.protocol.names import exact_bytes, is_exact, may_show_as
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.torrent import FileEntry, Torrent

MAX_METAINFO_BYTES = 64 * 1024 * 1024
"""A larger .torrent is refused unread (the largest real ones are a few MiB)."""

_READABLE = "let rtorrentd's user read rtorrent's session directory (give it rtorrent's group "
_READABLE += "with g+rx on the directory and g+r on its files, or run it as rtorrent's user)"

ListDir = Callable[[bytes], Collection[bytes]]


@dataclass(frozen=True, slots=True)
class ExactDeletion:
    """A deletion planned on exact names, with what the content check needs."""

    deletion: Deletion
    meta: Metainfo
    session_dir: str
    planned: tuple[PlannedFile, ...]  # the plan's entry for each file of `meta`, in order


async def plan_exact(
    client: RtorrentClient,
    torrent: Torrent,
    listed: Sequence[FileEntry],
    allowed_roots: Sequence[str],
    shared: Collection[str],
    *,
    check: Callable[[Deletion], None] = lambda deletion: None,
    spellings: Spellings | None = None,
) -> ExactDeletion:
    """`plan_deletion` on the torrent's exact names; raises `UnsafeDeletion`.

    `listed` is rtorrent's `f.multicall` (display strings); `shared` the paths
    other loaded torrents list; `check` is run on the plan too (it may refuse);
    `spellings` the planning round's directory listings (`plan_deletion`).
    The disk work runs in a worker thread.
    """
    session_dir = await client.session_path()
    meta = await anyio.to_thread.run_sync(read_metainfo, session_dir, torrent.hash)
    files = match_files(meta, listed)
    plan = functools.partial(
        _plan_on_disk, torrent, meta, files, allowed_roots, shared, check=check, spellings=spellings
    )
    deletion, planned = await anyio.to_thread.run_sync(plan, abandon_on_cancel=True)
    return ExactDeletion(deletion, meta, session_dir, planned)


async def verify(client: RtorrentClient, exact: ExactDeletion, budget: int) -> Verified:
    """Show that every file the plan unlinks holds the torrent's bytes, or refuse.

    Pieces are picked among those rtorrent has; at most `budget` bytes are read.
    """
    have = await pieces_had(client, exact)
    check = functools.partial(_verify_on_disk, exact, have, budget)
    return await anyio.to_thread.run_sync(check, abandon_on_cancel=True)


def unchanged(before: ExactDeletion, after: ExactDeletion) -> bool:
    """Whether `after` plans the same entries, with the same identities, as `before`:
    then a content check of `before` holds for `after`."""
    return [(p.path, p.fate, p.identity) for p in before.planned] == [
        (p.path, p.fate, p.identity) for p in after.planned
    ]


# --- the metainfo ------------------------------------------------------------------------


def read_metainfo(session_dir: str, info_hash: str) -> Metainfo:
    """The torrent's metainfo from rtorrent's session directory; refuses when it
    cannot be had, saying how to make it possible."""
    path = posixpath.join(_session_directory(session_dir), f"{info_hash.upper()}.torrent")
    data = _read_session_file(path)
    try:
        return parse_metainfo(data, info_hash)
    except MetainfoError as exc:
        why = f"the torrent's metainfo there cannot be used ({exc})"
        advice = "rtorrent rewrites it on every session save: retry later, or " + BY_HAND
        raise refuse(path, why, advice) from exc


def _session_directory(shown: str) -> str:
    if not shown:
        raise refuse(
            "",
            "rtorrent keeps no session (session.path is empty), so the torrent's metainfo, "
            "which holds its files' exact names, cannot be read",
            "set session.path in rtorrent.rc, or " + BY_HAND,
        )
    return resolve_shown_path(shown, what="rtorrent's session.path")


def _read_session_file(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_METAINFO_BYTES:
                raise refuse(path, f"it is {size} bytes, too large for a .torrent", BY_HAND)
            return file.read(MAX_METAINFO_BYTES + 1)
    except FileNotFoundError as exc:
        why = (
            "the torrent's metainfo is not in rtorrent's session directory, so its files' "
            "exact names cannot be read"
        )
        advice = "rtorrent writes it when a torrent is added and on every session save: "
        raise refuse(path, why, advice + "retry later, or " + BY_HAND) from exc
    except PermissionError as exc:
        why = "rtorrentd may not read the torrent's metainfo, which holds its files' exact names"
        raise refuse(path, why, _READABLE) from exc
    except OSError as exc:
        why = f"the torrent's metainfo cannot be read ({exc.strerror})"
        raise refuse(path, why, _READABLE) from exc


def match_files(meta: Metainfo, listed: Sequence[FileEntry]) -> tuple[FileEntry, ...]:
    """The metainfo's files with their exact relative paths (as `os.fsdecode` text),
    after checking them against what rtorrent lists; refuses any mismatch.

    rtorrent lists the files in the metainfo's order. Of a file's spellings
    (`path`, `path.<encoding>`) the one rtorrent uses is the one its display can be.
    """
    if len(listed) != len(meta.files):
        why = f"rtorrent lists {len(listed)} files, its metainfo {len(meta.files)}"
        raise refuse(meta.info_hash, why, BY_HAND)
    found: list[FileEntry] = []
    for number, (entry, shown) in enumerate(zip(meta.files, listed, strict=True)):
        if entry.length != shown.size:
            why = f"rtorrent lists {shown.size} bytes, its metainfo {entry.length} (file {number})"
            raise refuse(shown.path, why, BY_HAND)
        joined = [b"/".join(spelling) for spelling in entry.spellings]
        fits = [path for path in joined if may_show_as(path, shown.path)]
        if len(fits) != 1:
            why = (
                "none of the metainfo's names for this file is what rtorrent shows"
                if not fits
                else f"the metainfo spells it in {len(fits)} ways rtorrent shows alike"
            )
            raise refuse(shown.path, why + f" (file {number})", BY_HAND)
        found.append(FileEntry(os.fsdecode(fits[0]), entry.length))
    return tuple(found)


# --- d.directory ---------------------------------------------------------------------------


def resolve_shown_path(
    shown: str,
    *,
    names: Sequence[bytes] = (),
    what: str = "the torrent's directory",
    listdir: ListDir = os.listdir,
) -> str:
    """The path on disk that `shown` (a path as rtorrent shows it) stands for, as
    `os.fsdecode` text; refuses when that cannot be told.

    `names` are the spellings of the torrent's name when the last component is
    the torrent's own directory (multi-file): then only one of those may stand
    there, and when none is on disk the path is the one spelling (its data gone).
    A relative path or one with '..' is returned as it is, for planning to refuse.
    """
    parts = [p for p in shown.split("/") if p not in ("", ".")]
    if not shown.startswith("/") or ".." in parts:
        return shown
    resolver = _Resolver(shown, what, listdir)
    path = b"/"
    for number, part in enumerate(parts):
        own = names if number == len(parts) - 1 else ()
        path = os.path.join(path, resolver.component(path, part, own))
    return os.fsdecode(path)


@dataclass(frozen=True, slots=True)
class _Resolver:
    shown: str  # the whole path, for messages
    what: str
    listdir: ListDir

    def component(self, parent: bytes, part: str, names: Sequence[bytes]) -> bytes:
        """The entry of `parent` that `part` stands for."""
        if is_exact(part):
            return exact_bytes(part)
        entries = self._alike(parent, part)
        expected = [name for name in names if may_show_as(name, part)]
        if expected:
            return self._own_directory(parent, part, entries, expected)
        if len(entries) == 1:
            return entries[0]
        if not entries:
            why = f"no entry of {os.fsdecode(parent)!r} is what rtorrent shows as {part!r}"
            raise refuse(self.shown, f"{self.what}: {why}", "check where its data is; " + BY_HAND)
        raise self._ambiguous(parent, part, entries)

    def _alike(self, parent: bytes, part: str) -> list[bytes]:
        """The entries of `parent` that rtorrent may show as `part`."""
        try:
            return sorted(e for e in self.listdir(parent) if may_show_as(e, part))
        except FileNotFoundError:
            return []
        except OSError as exc:
            why = f"{self.what} has a name rtorrent shows with stand-ins ({part!r}), and "
            why += f"{os.fsdecode(parent)!r} cannot be listed to find it ({exc.strerror})"
            raise refuse(self.shown, why, "let rtorrentd's user list that directory") from exc

    def _own_directory(
        self, parent: bytes, part: str, entries: list[bytes], names: list[bytes]
    ) -> bytes:
        """The torrent's own directory: a spelling of its name, and nothing else that
        rtorrent shows alike beside it. None on disk: its one spelling (data gone)."""
        if len(names) == 1 and entries in ([], names):
            return names[0]
        if len(entries) == 1 and entries[0] in names:
            return entries[0]
        raise self._ambiguous(parent, part, entries or names)

    def _ambiguous(self, parent: bytes, part: str, entries: list[bytes]) -> Exception:
        alike = ", ".join(repr(os.fsdecode(e)) for e in entries)
        why = f"{os.fsdecode(parent)!r} holds {alike}, which rtorrent shows alike as {part!r}"
        if len(entries) == 1:
            why += ", and that is not the torrent's name"
        advice = "rename the one that is not the torrent's, or " + BY_HAND
        return refuse(self.shown, f"{self.what}: {why}", advice)


def _plan_on_disk(
    torrent: Torrent,
    meta: Metainfo,
    files: tuple[FileEntry, ...],
    allowed_roots: Sequence[str],
    shared: Collection[str],
    *,
    check: Callable[[Deletion], None],
    spellings: Spellings | None,
) -> tuple[Deletion, tuple[PlannedFile, ...]]:
    if torrent.multi_file is not None and bool(torrent.multi_file) != meta.multi_file:
        why = "rtorrent and the torrent's metainfo disagree on whether it is multi-file"
        raise refuse(torrent.directory or "", why, BY_HAND)
    names = meta.names if meta.multi_file else ()
    root = resolve_shown_path(torrent.directory or "", names=names)
    deletion = plan_deletion(
        root, files, allowed_roots, shared, multi_file=meta.multi_file, spellings=spellings
    )
    check(deletion)
    by_listed = {f.listed: f for f in deletion.files}
    listed_root = check_root(root)
    planned = tuple(by_listed[posixpath.join(listed_root, f.path)] for f in files)
    return deletion, planned


# --- content ---------------------------------------------------------------------------------


async def pieces_had(client: RtorrentClient, exact: ExactDeletion) -> Bitfield:
    """Which pieces rtorrent has: all or none from its counts, else `d.bitfield`,
    else (closed: the bitfield is "") the one in its session's resume file, saved
    anew for this. A bitfield that cannot be had counts as no piece: then only files
    that hold no data can go."""
    meta = exact.meta
    done, size, bits = await client.pieces(meta.info_hash)
    if size != meta.piece_count:
        why = f"rtorrent counts {size} pieces, its metainfo {meta.piece_count}"
        raise refuse(exact.deletion.root, why, BY_HAND)
    if done >= size:
        return Bitfield.full(size)
    if done <= 0:
        return Bitfield.empty(size)
    shown = bitfield_from_hex(bits, size)
    if shown is not None and shown.complete == done:
        return shown
    # Closed: the bits are in the session's resume file, written by a save; ask for
    # one so that they are today's (0.16 saves in the background: this waits for it).
    await client.save_session(meta.info_hash)
    resume = await anyio.to_thread.run_sync(_resume_bitfield, exact.session_dir, meta)
    return Bitfield.empty(size) if resume is None else resume


def _resume_bitfield(session_dir: str, meta: Metainfo) -> Bitfield | None:
    path = posixpath.join(session_dir, f"{meta.info_hash}.torrent.libtorrent_resume")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_METAINFO_BYTES)
    except OSError:
        return None  # then no piece counts as had: the check refuses, it never guesses
    return bitfield_from_resume(data, meta.piece_count)


def _verify_on_disk(exact: ExactDeletion, have: Bitfield, budget: int) -> Verified:
    planned = exact.planned
    on_disk = [i for i, p in enumerate(planned) if p.fate is not Fate.GONE]
    targets = [i for i in on_disk if _unlinks_data(planned[i])]
    return check_content(
        exact.meta,
        targets,
        on_disk,
        have,
        budget=budget,
        holds_no_data=lambda i: _holds_no_data(planned[i]),
        open_file=lambda i: open_planned(planned[i]),
        name_of=lambda i: planned[i].path,
    )


def _unlinks_data(planned: PlannedFile) -> bool:
    """Whether unlinking the entry may lose data: a regular file (a symlink's target stays)."""
    identity = planned.identity
    return planned.fate is Fate.UNLINK and identity is not None and stat.S_ISREG(identity.kind)


def _holds_no_data(planned: PlannedFile) -> bool:
    """Whether the file has no data at all (sparse throughout: created, never
    written). SEEK_DATA says so exactly where the filesystem supports it; where
    it does not, the whole file counts as data, which is the safe side."""
    try:
        fd = open_planned(planned)
    except OSError:
        return False
    try:
        os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as exc:
        return exc.errno == errno.ENXIO
    finally:
        os.close(fd)
    return False
