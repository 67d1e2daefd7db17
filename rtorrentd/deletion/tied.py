"""The tied `.torrent` file, which `d.erase` deletes through `d.delete_tied`.

rtorrent deletes whatever path `d.tied_to_file` names, wherever it is: a torrent
loaded from a `.torrent` that lies inside another torrent's data (or any file
re-tied with `d.tied_to_file.set`) would lose that file to our `d.erase`. Left
tied, the file goes as rtorrent means it to (a watch directory's `.torrent`, so it
is not loaded again); anywhere data lives, it is untied first and kept.

rtorrent has no call that lists its watch directories (schedules cannot be read
back over RPC), so "where data lives" stands for them: every allowed root and
every loaded torrent's directory and data path, lexically and with symlinks
resolved. Pure apart from `resolve` (default `os.path.realpath`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable


def _inside(path: str, area: str) -> bool:
    return path == area or path.startswith(area.rstrip("/") + "/")


def untie_reason(
    tied: str,
    data_areas: Iterable[str],
    *,
    resolve: Callable[[str], str] = os.path.realpath,
) -> str:
    """Why the tied file must be untied before `d.erase`, or "" to leave it tied.

    Untied when it is not an absolute path to a `.torrent` file (d.delete_tied
    would delete any file), or when it lies inside any of `data_areas` (allowed
    roots, loaded torrents' directories and data), lexically or resolved.
    """
    if not tied:
        return ""
    if not posixpath.isabs(tied) or not tied.endswith(".torrent"):
        return f"the tied file {tied!r} is not an absolute path to a .torrent"
    lexical = posixpath.normpath(tied)
    resolved = resolve(tied)
    for area in {a for a in data_areas if posixpath.isabs(a)}:
        for path, base in ((lexical, posixpath.normpath(area)), (resolved, resolve(area))):
            if _inside(path, base):
                return f"the tied file {tied!r} lies inside {area!r}, where data lives"
    return ""
