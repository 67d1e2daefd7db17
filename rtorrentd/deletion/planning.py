"""Plan the deletion of one torrent's files, without changing anything.

Deletion goes in two phases. `plan_deletion` only looks (lstat, stat, realpath)
and decides, raising `UnsafeDeletion` at the first doubt, so the executor can log
exactly what will happen before anything does; `carry_out.carry_out` then acts on
the plan and re-checks every entry immediately before touching it.

The names it is given are exact (`exact`: from the torrent's metainfo, never
rtorrent's display strings). The checks are `containment` (allowed roots,
symlinks, the files against the disk), `mounts` (mount points inside the
torrent) and `sharers` (files another loaded torrent lists: kept).
A directory is planned for removal only if it is the torrent's, and is removed
only if it is empty by then, so anything a user added keeps it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from pathlib import PurePosixPath

from rtorrentd.deletion.containment import (
    anchor_for,
    check_root,
    check_root_on_disk,
    dedupe,
    lstat_or_none,
    normalise_shared,
    probe_file,
    refuse,
    resolve_allowed_roots,
)
from rtorrentd.deletion.disk import fact_of
from rtorrentd.deletion.model import (
    Anchor,
    Deletion,
    Fate,
    Identity,
    ListedFile,
    Location,
    PlannedDir,
    PlannedFile,
    Probe,
)
from rtorrentd.deletion.mounts import check_no_mounts
from rtorrentd.deletion.sharers import find_sharers
from rtorrentd.deletion.spelling import Spellings
from rtorrentd.engine.facts import freed_by_unlinking


def plan_deletion(
    root: str,
    files: Sequence[ListedFile],
    allowed_roots: Sequence[str],
    shared: Collection[str],
    *,
    multi_file: bool,
    spellings: Spellings | None = None,
) -> Deletion:
    """Decide, without changing anything, how to delete one torrent's files.

    `root` is `d.directory` and `files` the torrent's files (relative paths and
    sizes), both by their exact names (`exact.plan_exact` makes them; as
    `os.fsdecode` text); `shared` holds the absolute paths that other loaded
    torrents list (as rtorrent shows them); `multi_file` is
    `d.is_multi_file` (only then is `root` the torrent's own directory, which may
    be removed once empty). `spellings` are the directory listings of this
    planning round (`spelling`), shared with the sharing look-up just before it;
    a round of its own by default. Raises `UnsafeDeletion` on any doubt.
    """
    try:
        spelled = spellings or Spellings()
        return _plan(root, files, allowed_roots, shared, multi_file=multi_file, spellings=spelled)
    except OSError as exc:
        # Anything the checks did not foresee (a race, an I/O error) is a doubt too.
        path = exc.filename if isinstance(exc.filename, str) else root
        raise refuse(path, f"it cannot be examined ({exc})", "retry later, then check it") from exc


def _plan(
    root: str,
    files: Sequence[ListedFile],
    allowed_roots: Sequence[str],
    shared: Collection[str],
    *,
    multi_file: bool,
    spellings: Spellings,
) -> Deletion:
    anchors = resolve_allowed_roots(allowed_roots)
    others = normalise_shared(shared)
    listed_root = check_root(root)
    real_root = os.path.realpath(listed_root)
    anchor = anchor_for(real_root, anchors, listed_root)
    entries = dedupe(files)
    root_exists = check_root_on_disk(listed_root, real_root, multi_file=multi_file)
    below = PurePosixPath(real_root).parts[len(PurePosixPath(anchor.path).parts) :]
    base = Location(anchor.path, anchor.key, below)
    check_no_mounts(real_root, entries, anchors, include_root=multi_file)
    probes = [probe_file(e, listed_root, base, root_exists=root_exists) for e in entries]
    planned = _decide(probes, find_sharers(probes, others, spellings))
    kept = [p for p, f in zip(probes, planned, strict=True) if f.fate is Fate.SHARED]
    prune = _prunable(probes, kept, base, anchors, prune_root=multi_file and root_exists)
    return Deletion(real_root, planned, prune, sum(f.freed for f in planned))


def _decide(probes: Sequence[Probe], sharers: dict[str, str]) -> tuple[PlannedFile, ...]:
    # On disk and not kept for another torrent: these are unlinked.
    unlinking = [
        fact_of(p.location.path, p.lstat)
        for p in probes
        if p.lstat is not None and p.location.path not in sharers
    ]
    freed = freed_by_unlinking(unlinking)
    return tuple(_plan_file(p, sharers.get(p.location.path), freed) for p in probes)


def _plan_file(probe: Probe, sharer: str | None, freed: dict[str, int]) -> PlannedFile:
    st = probe.lstat
    if st is None:
        fate, reason, nbytes = Fate.GONE, "not on disk: already deleted, or moved away", 0
    elif sharer is not None:
        fate, reason, nbytes = Fate.SHARED, f"kept: another torrent lists it as {sharer!r}", 0
    else:
        nbytes = freed.get(probe.location.path, 0)
        fate, reason = Fate.UNLINK, _unlink_reason(probe.location.path, st, nbytes)
    identity = None if st is None else Identity.of(st)
    return PlannedFile(probe.listed, probe.location, fate, identity, nbytes, reason)


def _unlink_reason(path: str, st: os.stat_result, freed: int) -> str:
    if stat.S_ISLNK(st.st_mode):
        return f"symlink to {os.readlink(path)!r}: the link goes, its target stays; frees 0"
    if freed:
        return f"regular file, {st.st_size} bytes, no other link: frees {freed}"
    return f"regular file with {st.st_nlink} links: its data stays under another name; frees 0"


def _prunable(
    probes: Sequence[Probe],
    kept: Sequence[Probe],
    root: Location,
    anchors: Sequence[Anchor],
    *,
    prune_root: bool,
) -> tuple[PlannedDir, ...]:
    """Directories between the root and the files, plus the root for a multi-file torrent.

    Never an allowed root, never above the root, never one that holds a kept file.
    """
    blocked = {d for p in kept for d in _rel_dirs(p.entry.path)}
    wanted = {d for p in probes for d in _rel_dirs(p.entry.path)[1:]}
    if prune_root:
        wanted.add(())
    never = {a.path for a in anchors}
    found = (_planned_dir(root, rel) for rel in wanted - blocked)
    dirs = [d for d in found if d is not None and d.path not in never]
    return tuple(sorted(dirs, key=lambda d: (-len(d.location.parts), d.path)))


def _rel_dirs(rel: str) -> list[tuple[str, ...]]:
    """The directories holding `rel`, from the root (`()`) down to its parent."""
    parts = tuple(rel.split("/"))
    return [parts[:depth] for depth in range(len(parts))]


def _planned_dir(root: Location, rel: tuple[str, ...]) -> PlannedDir | None:
    location = Location(root.anchor, root.anchor_key, root.parts + rel)
    st = lstat_or_none(location.path)
    if st is None or not stat.S_ISDIR(st.st_mode):  # lstat: a symlink is not S_ISDIR
        return None
    return PlannedDir(location, (st.st_dev, st.st_ino))
