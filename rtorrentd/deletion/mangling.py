"""Other torrents' paths as rtorrent shows them, matched against the disk.

To tell whether another loaded torrent uses one of our files (`sharers`), its
paths are needed as names on disk; but rtorrent shows them as display strings
(`?` or `%XX` for bytes, LF for CR: RTORRENT.md, "Names are lossy"), which may
name no file, or another. Every entry that the display string may stand for is
taken: keeping a file that another torrent might use is the safe side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection

from rtorrentd.protocol.names import is_exact, may_show_as


def disk_spellings(path: str, listdir: Callable[[str], Collection[bytes]]) -> list[str]:
    """The paths on disk that rtorrent may show as `path`: the text itself, and every
    path whose components rtorrent may show as the listed ones.

    `listdir` gives the names (bytes) in a directory, or none.
    """
    found: list[bytes] = [b"/"]
    for part in path.split("/"):
        if not part:
            continue
        if is_exact(part):
            found = [os.path.join(parent, part.encode()) for parent in found]
            continue
        found = [
            os.path.join(parent, name)
            for parent in found
            for name in sorted(listdir(os.fsdecode(parent)))
            if may_show_as(name, part)
        ]
    return [path, *(spelling for spelling in map(os.fsdecode, found) if spelling != path)]
