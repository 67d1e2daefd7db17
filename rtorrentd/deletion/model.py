"""What deleting one torrent's data means, as values: the plan and the outcome.

`planning.plan_deletion` makes a `Deletion` (every listed file with its `Fate`,
the directories to prune) without changing anything; `carry_out.carry_out` acts
on it and reports an `Outcome`. `Location` and `Identity` are what carrying out
re-checks: how to reach an entry without following links, and what it was when
planned.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from rtorrentd.torrent import FileEntry


class ListedFile(Protocol):
    """Anything with rtorrent's `f.path` and `f.size_bytes`, such as `FileEntry`."""

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...


class Fate(Enum):
    """What the plan does with one listed file."""

    UNLINK = "unlink"
    SHARED = "shared"  # another loaded torrent lists it: kept
    GONE = "gone"  # not on disk: deleted earlier (a crash before erase) or moved


@dataclass(frozen=True, slots=True)
class Location:
    """How `carry_out` reaches an entry: from an allowed root, one component at a time."""

    anchor: str  # the allowed root, resolved
    anchor_key: tuple[int, int]  # its (st_dev, st_ino) when planned
    parts: tuple[str, ...]  # single components below the anchor; the last is the entry

    @property
    def path(self) -> str:
        return posixpath.join(self.anchor, *self.parts)


@dataclass(frozen=True, slots=True)
class Identity:
    """What an entry was when planned; it must be the same when acted on.

    mtime catches a file replaced by one of the same size that reuses the freed
    inode number; ctime would not do, as unlinking a hard link changes it.
    """

    dev: int
    ino: int
    kind: int  # stat.S_IFMT
    size: int  # lstat size: for a symlink, the length of its target text
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        kind = stat.S_IFMT(st.st_mode)
        return cls(st.st_dev, st.st_ino, kind, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """The plan for one listed file; `reason` is for the log."""

    listed: str  # the torrent's root joined with f.path, as rtorrent names it
    location: Location
    fate: Fate
    identity: Identity | None  # None when gone
    freed: int
    reason: str

    @property
    def path(self) -> str:
        return self.location.path


@dataclass(frozen=True, slots=True)
class PlannedDir:
    """A directory of the torrent to remove if it is empty once the files are gone."""

    location: Location
    key: tuple[int, int]  # (st_dev, st_ino): a directory's size changes as it empties

    @property
    def path(self) -> str:
        return self.location.path


@dataclass(frozen=True, slots=True)
class Deletion:
    """What deleting one torrent's data will do; made by `plan_deletion`."""

    root: str  # the torrent's root, resolved
    files: tuple[PlannedFile, ...]  # one per distinct listed path, in listed order
    prune: tuple[PlannedDir, ...]  # deepest first
    freed_bytes: int

    @property
    def to_unlink(self) -> tuple[str, ...]:
        return self._paths(Fate.UNLINK)

    @property
    def kept_shared(self) -> tuple[str, ...]:
        return self._paths(Fate.SHARED)

    @property
    def already_gone(self) -> tuple[str, ...]:
        return self._paths(Fate.GONE)

    @property
    def prune_dirs(self) -> tuple[str, ...]:
        return tuple(d.path for d in self.prune)

    @property
    def reasons(self) -> tuple[tuple[str, str], ...]:
        return tuple((f.path, f.reason) for f in self.files)

    def _paths(self, fate: Fate) -> tuple[str, ...]:
        return tuple(f.path for f in self.files if f.fate is fate)


@dataclass(frozen=True, slots=True)
class Note:
    """A path left alone, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `carry_out` did. Erase the torrent only if `complete`; else retry later."""

    deleted: tuple[str, ...]
    already_gone: tuple[str, ...]
    skipped: tuple[Note, ...]
    removed_dirs: tuple[str, ...]
    skipped_dirs: tuple[Note, ...]
    freed_bytes: int

    @property
    def complete(self) -> bool:
        return not self.skipped


@dataclass(frozen=True, slots=True)
class Anchor:
    """An allowed root, resolved, and its (st_dev, st_ino) when planned."""

    path: str
    key: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Probe:
    """One listed file as planning found it on disk."""

    entry: FileEntry
    listed: str
    location: Location
    lstat: os.stat_result | None  # None: not on disk
