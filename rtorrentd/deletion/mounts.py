"""Mount points inside a torrent, from the kernel's mount table.

A mount point inside the torrent is refused as a symlinked directory is: a bind
mount keeps st_dev, so only /proc/self/mountinfo shows it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence

from rtorrentd.deletion.containment import BY_HAND, refuse
from rtorrentd.deletion.model import Anchor
from rtorrentd.torrent import FileEntry


def check_no_mounts(
    real_root: str, entries: Sequence[FileEntry], anchors: Sequence[Anchor], *, include_root: bool
) -> None:
    """Refuse a mount point inside the torrent, as a symlinked directory is refused.

    A bind mount of the same filesystem has the same st_dev, so only the mount
    table shows that its files are someone else's (a library bound into the
    torrent's directory to seed from). Allowed roots are the administrator's.
    """
    mounts = mount_points() - {a.path for a in anchors}
    if not mounts:
        return
    for entry in entries:
        parts = entry.path.split("/")
        for depth in range(0 if include_root else 1, len(parts) + 1):
            path = posixpath.join(real_root, *parts[:depth])
            if path in mounts:
                why = "this is a mount point inside the torrent (a bind mount of other data?)"
                raise refuse(path, why, "following it could delete data elsewhere; " + BY_HAND)


def mount_points() -> frozenset[str]:
    """Every mount point this process sees (Linux); none where that cannot be read."""
    try:
        with open("/proc/self/mountinfo", "rb") as table:
            lines = table.read().splitlines()
    except OSError:
        return frozenset()
    points = (line.split(b" ")[4] for line in lines if line.count(b" ") >= 4)
    return frozenset(os.fsdecode(_unescape_octal(p)) for p in points)


def _unescape_octal(field: bytes) -> bytes:
    # mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134.
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
