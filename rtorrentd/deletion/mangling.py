"""Names rtorrent mangled: every byte >= 0x80 of a non-UTF-8 name shows as '?'.

A listed `caf?.bin` may be this torrent's `caf\\xe9.bin` while a file really
called `caf?.bin`, of the same size, belongs to someone else (RTORRENT.md). Both
can stand in one directory; then the listed path cannot be matched to one of them.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Callable, Collection, Sequence

from rtorrentd.errors import UnsafeDeletion
from rtorrentd.torrent import FileEntry


def check_lookalikes(directory: str, entries: Sequence[FileEntry]) -> None:
    """Refuse when a listed name with '?' could be another file's mangled name.

    rtorrent shows every byte >= 0x80 of a non-UTF-8 name as '?' (RTORRENT.md), so
    `caf?.bin` may be this torrent's `caf\\xe9.bin` while a file really called
    `caf?.bin`, of the same size, belongs to someone else. If both forms are on
    disk, the listed path cannot be matched to one of them: refuse. Every component
    counts, the torrent's own directory (the end of d.directory) included.
    """
    ambiguous = functools.cache(_has_lookalike)  # one listdir per directory and name
    for entry in entries:
        path = posixpath.join(directory, entry.path)
        parent = "/"
        for part in path.split("/"):
            if "?" in part and ambiguous(parent, part):
                raise UnsafeDeletion(
                    f"refusing to delete {path!r}: name mangled by rtorrent: {parent!r} "
                    f"holds an entry whose non-UTF-8 name rtorrent shows as {part!r} "
                    "(bytes >= 0x80 become '?'), so the listed name cannot be matched to "
                    "one file on disk; delete this torrent's data by hand, or remove the "
                    "torrent without its data"
                )
            parent = posixpath.join(parent, part)


def disk_spellings(path: str, listdir: Callable[[str], Collection[bytes]]) -> list[str]:
    """The paths on disk that rtorrent may show as `path`: the text itself, and every
    path whose components rtorrent shows as the listed ones ('?' for bytes >= 0x80).

    Another torrent's mangled path names no file as such; to tell whether it is the
    same file as ours it has to be matched against the disk. `listdir` gives the
    names (bytes) in a directory, or none.
    """
    found: list[bytes] = [b"/"]
    for part in path.split("/"):
        if not part:
            continue
        want = os.fsencode(part)
        if "?" not in part:
            found = [os.path.join(parent, want) for parent in found]
            continue
        found = [
            os.path.join(parent, name)
            for parent in found
            for name in sorted(listdir(os.fsdecode(parent)))
            if _as_rtorrent_shows(name) == want
        ]
    return [path, *(spelling for spelling in map(os.fsdecode, found) if spelling != path)]


def _has_lookalike(parent: str, listed: str) -> bool:
    try:
        names = os.listdir(os.fsencode(parent))
    except OSError:
        return False  # planning refuses a missing or unreadable directory itself
    exact = listed.encode()
    return any(name != exact and _as_rtorrent_shows(name) == exact for name in names)


def _as_rtorrent_shows(name: bytes) -> bytes:
    try:
        name.decode()
    except UnicodeDecodeError:
        return re.sub(rb"[\x80-\xff]", b"?", name)
    return name
