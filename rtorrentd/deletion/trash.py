"""The recycle bin: data renamed into `[trash] path` instead of unlinked, and back.

The API (also for the orphan cleanup):

- `trash_paths(bin_dir, root, paths, reason)` moves absolute paths under one
  `root` into one new entry of kind "orphan"; `Entry`, `entries(bin_dir)`,
  `find(bin_dir, key)` read the bin; `discard` empties an entry, `expired` picks
  what `keep_for`/`max_size` let go; `recover` finishes what a crash left.
- `create_entry` is the lower level the executor uses for a torrent: an
  `EntryWriter` whose `take` is `carry_out`'s disposal (rename, not unlink).
- `put_back`/`take_back` (module `trash_restore`) restore an entry's paths.

An entry is a directory `<bin>/<id>/`: `data/` holds the moved paths at their
place below the entry's root (the layout is kept), `metainfo.torrent` a
torrent's .torrent, and one manifest says what the entry is and in which state:

- `manifest.partial`: being made. Written (fsync'd) *before* the first rename,
  listing every path to be moved with its identity; `recover` rolls such an
  entry back (each path renamed back where it was, if that place is free).
- `manifest.json`: complete. Renamed from `manifest.partial` after the last move.
- `manifest.restoring`: being restored (`trash_restore`).

Entries are made as `.new-<id>` and renamed to `<id>` once their partial manifest
is durable; emptied ones are renamed to `.emptying-<id>` before removal, so a
listing never shows half an entry. Whoever works on an entry holds a flock on its
directory (released by the kernel if the process dies): `recover` touches only
entries nobody holds, so two daemons, or the daemon and `rtorrentd trash`,
sharing a bin never undo each other's work. Moves are renames only (`renames`):
the data keeps its inode, nothing is copied, and a bin on another filesystem than
the data is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping, Sequence

from rtorrentd.deletion.model import Identity, Note
from rtorrentd.deletion.renames import open_walk, plain
from rtorrentd.deletion.trash_entry import (
    EMPTYING,
    NEW,
    EntryWriter,
    create_entry,
    discard,
    ensure_bin,
    held,
    recover_restoring,
    remove_tree,
    roll_back,
)
from rtorrentd.deletion.trash_manifests import keep_only, read_manifest
from rtorrentd.deletion.trash_model import (
    COMPLETE,
    DATA,
    METAINFO,
    PARTIAL,
    RESTORING,
    Entry,
    Item,
    Manifest,
    TorrentRecord,
    TrashOutcome,
)
from rtorrentd.errors import TrashError
from rtorrentd.logger import get_logger

__all__ = [
    "COMPLETE",
    "DATA",
    "METAINFO",
    "PARTIAL",
    "RESTORING",
    "Entry",
    "EntryWriter",
    "Item",
    "Manifest",
    "TorrentRecord",
    "TrashOutcome",
    "create_entry",
    "discard",
    "ensure_bin",
    "entries",
    "expired",
    "expires",
    "find",
    "recover",
    "same_filesystem_problem",
    "trash_paths",
]

log = get_logger("rtorrentd.deletion.trash")


# --- the bin --------------------------------------------------------------------------------


def same_filesystem_problem(bin_dir: str, path: str) -> str:
    """Why the bin cannot take data from `path` (another filesystem: a move there
    would be a copy), or "". The bin, if not made yet, counts as its parent."""
    try:
        data = os.stat(path).st_dev
    except OSError as exc:
        return f"{path!r} cannot be examined ({exc.strerror})"
    probe = bin_dir if os.path.lexists(bin_dir) else os.path.dirname(bin_dir.rstrip("/"))
    try:
        here = os.stat(probe).st_dev
    except OSError as exc:
        return f"the recycle bin {bin_dir!r} cannot be examined ({exc.strerror})"
    if here != data:
        return (
            f"the recycle bin {bin_dir!r} is on another filesystem (device {here}) than "
            f"{path!r} (device {data}): moving data there would copy it"
        )
    return ""


def entries(bin_dir: str, *, states: Collection[str] = (COMPLETE,)) -> tuple[Entry, ...]:
    """The bin's entries in `states`, oldest first. A missing bin is empty."""
    try:
        names = os.listdir(bin_dir)
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise TrashError(f"cannot read the recycle bin {bin_dir!r} ({exc.strerror})") from exc
    keep_only(bin_dir, names)
    found = []
    for name in names:
        if name.startswith(".") or not os.path.isdir(os.path.join(bin_dir, name)):
            continue
        read = read_manifest(os.path.join(bin_dir, name))
        if read is not None and read[0] in states:
            found.append(Entry(bin_dir, name, read[1], read[0]))
    return tuple(sorted(found, key=lambda e: (e.manifest.created, e.name)))


def find(bin_dir: str, key: str) -> Entry:
    """The complete entry for `key`: an info-hash (any case, or a unique prefix of
    8+ characters), an entry's directory name, or a torrent's exact name (the
    newest when several). Raises TrashError."""
    found = entries(bin_dir)
    upper = key.upper()
    by_hash = [e for e in found if e.hash and len(key) >= 8 and e.hash.startswith(upper)]
    matches = by_hash or [e for e in found if e.name == key]
    matches = matches or [e for e in found if e.manifest.title == key]
    if not matches:
        raise TrashError(
            f"the recycle bin {bin_dir!r} has no entry {key!r}; see `rtorrentd trash list`"
        )
    hashes = {e.hash for e in matches}
    if len(hashes) > 1:
        raise TrashError(f"{key!r} names several torrents in the bin; give the info-hash")
    return matches[-1]


def expired(
    found: Sequence[Entry], now: float, keep_for: float | None, max_size: int | None
) -> tuple[Entry, ...]:
    """Which entries retention lets go, oldest first: those older than `keep_for`,
    then the oldest until the rest fit in `max_size`. Pure."""
    ordered = sorted(found, key=lambda e: (e.manifest.created, e.name))
    old = [e for e in ordered if keep_for is not None and now - e.manifest.created >= keep_for]
    rest = [e for e in ordered if e not in old]
    total = sum(e.manifest.size for e in rest)
    extra: list[Entry] = []
    for entry in rest:
        if max_size is None or total <= max_size:
            break
        extra.append(entry)
        total -= entry.manifest.size
    return tuple(old + extra)


def expires(entry: Entry, keep_for: float | None) -> float | None:
    """When `keep_for` lets the entry go (unix time), or None."""
    return None if keep_for is None else entry.manifest.created + keep_for


def trash_paths(
    bin_dir: str,
    root: str,
    paths: Sequence[str],
    reason: str,
    *,
    identities: Mapping[str, Identity] | None = None,
    now: float | None = None,
) -> TrashOutcome:
    """Move `paths` (absolute, each below `root`) into one new entry of kind
    "orphan", keeping their layout below `root`; `trash list/restore/empty` and
    expiry treat it like any entry (restore puts the paths back, no torrent).

    Each path is reached from `root` without following links and renamed, never
    copied: a bin on another filesystem than `root` is refused (TrashError). A
    directory is moved whole, with whatever it holds at that instant: pass empty
    ones. With `identities` (path -> `Identity` as the caller found it), a path
    that is no longer that entry is left alone (`skipped`), as is one that is gone
    or not below `root`. Crash-safe like every entry (`recover`).
    """
    problem = same_filesystem_problem(bin_dir, root)
    if problem:
        raise TrashError(f"refusing to move orphans into the bin: {problem}")
    real_root = os.path.realpath(root)
    root_st = os.stat(real_root)
    key = (root_st.st_dev, root_st.st_ino)
    wanted: list[tuple[str, tuple[str, ...]]] = []
    skipped: list[Note] = []
    for path in dict.fromkeys(paths):
        parts = _below(real_root, path)
        if parts is None:
            skipped.append(Note(path, f"not a plain path below {root!r}"))
        else:
            wanted.append((path, parts))
    planned = []
    for path, parts in wanted:
        try:
            planned.append(Item.of("/".join(parts), os.lstat(path)))
        except OSError as exc:
            skipped.append(Note(path, f"cannot be examined ({exc.strerror})"))
    moving = {item.path for item in planned}
    wanted = [(p, parts) for p, parts in wanted if "/".join(parts) in moving]
    if not wanted:
        return TrashOutcome(None, (), tuple(skipped))
    draft = Manifest(
        "orphan", time.time() if now is None else now, reason, real_root, key, tuple(planned)
    )
    moved: list[str] = []
    with create_entry(bin_dir, draft, "orphan") as writer:
        for path, parts in wanted:
            note = _take_one(writer, real_root, key, parts, (identities or {}).get(path))
            if note:
                skipped.append(Note(path, note))
            else:
                moved.append(path)
        entry = writer.commit() if moved else None
    if entry is not None:
        log.info(
            "trash.moved",
            entry=entry.name,
            kind="orphan",
            reason=reason,
            paths=len(moved),
            size=entry.manifest.size,
        )
    return TrashOutcome(entry, tuple(moved), tuple(skipped))


def _below(root: str, path: str) -> tuple[str, ...] | None:
    if not path.startswith("/"):
        return None
    parts = tuple(p for p in path.split("/") if p)
    top = tuple(p for p in root.split("/") if p)
    rest = parts[len(top) :]
    if parts[: len(top)] != top or not rest or not all(plain(p) for p in rest):
        return None
    return rest


def _take_one(
    writer: EntryWriter,
    root: str,
    key: tuple[int, int],
    parts: tuple[str, ...],
    expected: Identity | None,
) -> str:
    """Move one orphan; "" when moved, else why not."""
    try:
        with open_walk(root, key, parts[:-1]) as parent:
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            if expected is not None and Identity.of(st) != expected:
                return "it changed since it was found: left alone"
            writer.take(parts, parent, parts[-1])
    except FileNotFoundError:
        return "no longer there"
    except OSError as exc:
        return f"not moved ({exc.strerror or exc})"
    return ""


# --- recovering ---------------------------------------------------------------------------


def recover(bin_dir: str, loaded: Collection[str] | None = None) -> int:
    """Finish what a crash left in the bin; how many entries were acted on.

    A partial entry is rolled back (one still named `.new-` too, should the
    rename of its directory not have reached the disk); an entry being emptied is
    removed; one being made that has no manifest yet holds nothing and goes. A
    restore left half done (`trash_entry.recover_restoring`) is finished when
    its torrent is loaded (`loaded`: the info-hashes rtorrent has; None: unknown,
    leave torrent restores), else rolled back. Entries another process holds are
    left to it.
    """
    try:
        names = os.listdir(bin_dir)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise TrashError(f"cannot read the recycle bin {bin_dir!r} ({exc.strerror})") from exc
    acted = 0
    for name in sorted(names):
        path = os.path.join(bin_dir, name)
        with held(path) as fd:
            if fd is None:
                continue
            if name.startswith(EMPTYING):
                remove_tree(path)
                acted += 1
                continue
            read = read_manifest(path)
            if name.startswith(NEW) and read is None:
                remove_tree(path)  # its manifest comes before its data: it holds nothing
                acted += 1
                continue
            if read is None or read[0] == COMPLETE:
                continue
            state, manifest = read
            entry = Entry(bin_dir, name, manifest, state)
            if state == PARTIAL:
                log.info("trash.rolled_back", entry=name, paths=len(manifest.items))
                roll_back(entry)
            elif recover_restoring(entry, loaded):
                pass
            else:
                continue
            acted += 1
    return acted
