"""Mount points: inside a torrent, from the kernel's mount table; and those
/etc/fstab plans, mounted or not, for the orphan scan.

A mount point inside the torrent is refused as a symlinked directory is: a bind
mount keeps st_dev, so only /proc/self/mountinfo shows it. A disk that is not
mounted right now leaves its mount point an empty directory that only /etc/fstab
names: removing it as an orphan would make the next `mount` fail.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

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


FSTAB = "/etc/fstab"


@dataclass(frozen=True, slots=True)
class Planned:
    """The mount points a filesystem table names, mounted or not, and every
    directory on the way to one (normalised, and resolved where they exist):
    never removed as empty. `problem` says why the table could not be read;
    then every empty directory is kept, since any of them may be a mount point."""

    keep: frozenset[str] = frozenset()
    problem: str = ""

    def keeps(self, path: str) -> bool:
        """Whether the empty directory `path` must stay."""
        return bool(self.problem) or path in self.keep


def planned_mounts(fstab: str = FSTAB) -> Planned:
    """What `fstab` plans (see `Planned`); never raises. No table at all (a
    container) plans nothing; one that cannot be read keeps every empty directory."""
    try:
        with open(fstab, "rb") as table:
            data = table.read()
    except FileNotFoundError:
        return Planned()
    except OSError as exc:
        why = f"{fstab} cannot be read ({exc.strerror or exc})"
        return Planned(problem=why + ": every empty directory is kept (any may be a mount point)")
    keep: set[str] = set()
    for point in fstab_mount_points(data):
        for spelled in {os.path.normpath(point), os.path.realpath(point)}:
            keep.update(_and_above(spelled))
    return Planned(frozenset(keep))


def fstab_mount_points(data: bytes) -> list[str]:
    """The mount points (second field) of an fstab(5) text: absolute paths only
    (`none` and `swap` are none), octal escapes (`\\040` a space) undone; comment
    and blank lines skipped, whatever the source (`UUID=`, `LABEL=`, a device)."""
    points = []
    for line in data.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith(b"#"):
            continue
        target = _unescape_octal(fields[1])
        if target.startswith(b"/"):
            points.append(os.fsdecode(target))
    return points


def _and_above(path: str) -> Iterator[str]:
    """`path` (absolute, normalised) and every directory above it but "/"."""
    while path.startswith("/") and path != "/":
        yield path
        path = posixpath.dirname(path)
