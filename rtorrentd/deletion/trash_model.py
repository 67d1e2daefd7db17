"""The recycle bin's values: what an entry holds (`Manifest`, `Item`,
`TorrentRecord`), the entry itself (`Entry`), and the manifest as JSON.

Paths are text as `os.fsdecode` gives it: a name that is not UTF-8 carries its
bytes as surrogate escapes, which JSON writes as \\udcXX and reads back the same.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from rtorrentd.deletion.model import Identity, Note

COMPLETE, PARTIAL, RESTORING = "manifest.json", "manifest.partial", "manifest.restoring"
DATA, METAINFO = "data", "metainfo.torrent"
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link"}

# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One path moved into an entry: `path` relative to the entry's root ('/'-joined
    exact names as `os.fsdecode` text), and what it was (rename keeps all of it)."""

    path: str
    dev: int
    ino: int
    kind: str  # "file", "dir", "link" or "other"
    size: int
    mtime_ns: int
    frees: int  # bytes emptying frees: a regular file's size if it had no other link

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> Item:
        """The item for `path` as lstat found it."""
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "other")
        frees = st.st_size if kind == "file" and st.st_nlink == 1 else 0
        return cls(path, st.st_dev, st.st_ino, kind, st.st_size, st.st_mtime_ns, frees)

    @classmethod
    def planned(cls, path: str, identity: Identity, frees: int) -> Item:
        """The item for a file as a deletion's plan found it."""
        kind = _KINDS.get(identity.kind, "other")
        return cls(path, identity.dev, identity.ino, kind, identity.size, identity.mtime_ns, frees)

    def same(self, st: os.stat_result) -> bool:
        """Whether `st` is this very entry (device and inode: a rename keeps both)."""
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)


@dataclass(frozen=True, slots=True)
class TorrentRecord:
    """What putting a torrent back into rtorrent needs."""

    hash: str
    name: str
    directory: str  # d.directory by its exact name (`d.directory.set` on restore)
    multi_file: bool
    label: str  # d.custom1 as rtorrent holds it (ruTorrent's URL-encoding kept)
    custom: tuple[tuple[str, str], ...]  # d.custom KEY values, custom2..5 as "custom2"...
    started: bool  # d.state before rtorrentd stopped it
    kept: tuple[str, ...] = ()  # files left in place: another torrent uses them


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an entry holds and how to put it back."""

    kind: str  # "torrent" or "orphan"
    created: float  # unix time
    reason: str  # the rule (torrent) or why the paths are orphans
    root: str  # absolute; every item lies below it
    root_key: tuple[int, int]  # its (st_dev, st_ino) when the entry was made
    items: tuple[Item, ...]
    torrent: TorrentRecord | None = None

    @property
    def size(self) -> int:
        """Bytes of the regular files in the entry."""
        return sum(i.size for i in self.items if i.kind == "file")

    @property
    def frees(self) -> int:
        """Bytes emptying the entry frees (files with no other link when moved)."""
        return sum(i.frees for i in self.items)

    @property
    def title(self) -> str:
        """The torrent's name, or the first path of an orphan entry."""
        if self.torrent is not None:
            return self.torrent.name
        first = self.items[0].path if self.items else ""
        return first + (f" (+{len(self.items) - 1})" if len(self.items) > 1 else "")


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a bin: its directory name, manifest and state file."""

    bin: str
    name: str
    manifest: Manifest
    state: str = COMPLETE  # COMPLETE, PARTIAL or RESTORING

    @property
    def path(self) -> str:
        return os.path.join(self.bin, self.name)

    @property
    def hash(self) -> str:
        return "" if self.manifest.torrent is None else self.manifest.torrent.hash


@dataclass(frozen=True, slots=True)
class TrashOutcome:
    """What `trash_paths` did: the entry made (None if nothing moved), the paths
    moved, and those left alone with why."""

    entry: Entry | None
    moved: tuple[str, ...]
    skipped: tuple[Note, ...]


# --- manifests ------------------------------------------------------------------------------


def manifest_to_json(manifest: Manifest) -> dict[str, object]:
    """The manifest as JSON-ready values (paths as text; non-UTF-8 bytes as
    surrogate escapes, which JSON carries as \\udcXX)."""
    torrent = manifest.torrent
    return {
        "version": 1,
        "kind": manifest.kind,
        "created": manifest.created,
        "reason": manifest.reason,
        "root": manifest.root,
        "root_key": list(manifest.root_key),
        "size": manifest.size,
        "items": [
            [i.path, i.dev, i.ino, i.kind, i.size, i.mtime_ns, i.frees] for i in manifest.items
        ],
        "torrent": None
        if torrent is None
        else {
            "hash": torrent.hash,
            "name": torrent.name,
            "directory": torrent.directory,
            "multi_file": torrent.multi_file,
            "label": torrent.label,
            "custom": dict(torrent.custom),
            "started": torrent.started,
            "kept": list(torrent.kept),
        },
    }


def manifest_from_json(data: Mapping[str, object]) -> Manifest:
    """The manifest `manifest_to_json` wrote; raises ValueError when it is not one."""
    try:
        items = tuple(_item(row) for row in _list(data["items"]))
        raw = data["torrent"]
        torrent = None if raw is None else _record(_dict(raw))
        dev, ino = (int(_number(n)) for n in _list(data["root_key"]))
        return Manifest(
            str(data["kind"]),
            float(_number(data["created"])),
            str(data["reason"]),
            str(data["root"]),
            (dev, ino),
            items,
            torrent,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a bin manifest ({exc!r})") from exc


def _item(row: object) -> Item:
    path, dev, ino, kind, size, mtime_ns, frees = _list(row)
    numbers = [int(_number(n)) for n in (dev, ino, size, mtime_ns, frees)]
    return Item(str(path), numbers[0], numbers[1], str(kind), *numbers[2:])


def _record(t: Mapping[str, object]) -> TorrentRecord:
    custom = tuple((str(k), str(v)) for k, v in _dict(t["custom"]).items())
    kept = tuple(str(path) for path in _list(t.get("kept", [])))
    name, directory = str(t["name"]), str(t["directory"])
    multi, label, started = bool(t["multi_file"]), str(t["label"]), bool(t["started"])
    return TorrentRecord(str(t["hash"]), name, directory, multi, label, custom, started, kept)


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, not {value!r}")
    return value


def _dict(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, not {value!r}")
    return value


def _number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, not {value!r}")
    return value
