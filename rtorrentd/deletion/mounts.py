"""Mount points: inside a torrent, from the kernel's mount table; and those
/etc/fstab and systemd's .mount/.automount units plan, mounted or not, for the
orphan scan.

A mount point inside the torrent is refused as a symlinked directory is: a bind
mount keeps st_dev, so only /proc/self/mountinfo shows it. A disk that is not
mounted right now leaves its mount point an empty directory that only /etc/fstab
or a unit names: removing it as an orphan would make the next `mount` fail.
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
# Where systemd looks for units (systemd.unit(5), system manager); a .mount or
# .automount unit's name is its mount point, escaped (systemd-escape --path).
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)


@dataclass(frozen=True, slots=True)
class Planned:
    """The mount points fstab and systemd's units name, mounted or not, and every
    directory on the way to one (normalised, and resolved where they exist), and
    the sources of bind mounts in any namespace: never removed as empty. `problem`
    says why a table could not be read; then every empty directory is kept, since
    any of them may be a mount point."""

    keep: frozenset[str] = frozenset()
    problem: str = ""

    def keeps(self, path: str) -> bool:
        """Whether the empty directory `path` must stay."""
        return bool(self.problem) or path in self.keep


def planned_mounts(
    fstab: str = FSTAB, unit_dirs: Sequence[str] = UNIT_DIRS, proc: str = "/proc"
) -> Planned:
    """What `fstab` and the .mount/.automount units in `unit_dirs` plan (see
    `Planned`), and the directories mounts of any namespace have as their root
    (`foreign_mount_sources`); never raises. What is not there at all (a container
    has no fstab, no systemd) plans nothing; what cannot be read keeps every empty
    directory."""
    problems: list[str] = []
    points: list[str] = []
    try:
        with open(fstab, "rb") as table:
            points += fstab_mount_points(table.read())
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(f"{fstab} cannot be read ({exc.strerror or exc})")
    for directory in unit_dirs:
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            problems.append(f"{directory} cannot be listed ({exc.strerror or exc})")
            continue
        points += (p for p in map(unit_mount_point, names) if p is not None)
    if problems:
        why = "; ".join(problems)
        return Planned(problem=why + ": every empty directory is kept (any may be a mount point)")
    keep: set[str] = set(foreign_mount_sources(proc))
    for point in points:
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


def unit_mount_point(name: str) -> str | None:
    """The mount point a systemd unit named `name` is for (`srv-my\\x2ddisk.mount`:
    /srv/my-disk), or None for a unit of another kind."""
    stem, _dot, kind = name.rpartition(".")
    if kind not in ("mount", "automount") or not stem:
        return None
    parts = [_unescape_hex(os.fsencode(part)) for part in stem.split("-") if part]
    return os.fsdecode(b"/" + b"/".join(parts))


def _unescape_hex(part: bytes) -> bytes:
    # systemd-escape writes every byte but [A-Za-z0-9:_.] (and a leading ".") as \xNN.
    return re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), part)


def _and_above(path: str) -> Iterator[str]:
    """`path` (absolute, normalised) and every directory above it but "/"."""
    while path.startswith("/") and path != "/":
        yield path
        path = posixpath.dirname(path)


Mount = tuple[bytes, bytes, bytes]  # major:minor, root within its filesystem, mount point


def foreign_mount_sources(proc: str = "/proc") -> frozenset[str]:
    """The directories, as this process sees them, that a mount of any namespace
    has as its root: a bind mount's source, here or in another namespace (a
    container's volume: `docker run -v /data/dl:/downloads`), which the mount table
    here does not show. An empty one removed leaves that mount on a dead directory
    (measured: writes there fail with ENOENT). Only the namespaces /proc shows (as
    root: all; otherwise the user's own processes)."""
    here: dict[bytes, list[Mount]] = {}
    for mount in _mounts(f"{proc}/self/mountinfo"):
        here.setdefault(mount[0], []).append(mount)
    seen: set[str] = set()
    found: set[str] = set()
    try:
        pids = ["self", *(name for name in os.listdir(proc) if name.isdigit())]
    except OSError:
        return frozenset()
    for pid in pids:
        namespace = _namespace(f"{proc}/{pid}")
        if namespace is None or namespace in seen:
            continue
        seen.add(namespace)
        for device, root, _point in _mounts(f"{proc}/{pid}/mountinfo"):
            if root != b"/":  # a whole filesystem's root is a mount point here, if anywhere
                found.update(_seen_here(here.get(device, ()), root))
    return frozenset(found)


def _namespace(process: str) -> str | None:
    try:
        return os.readlink(f"{process}/ns/mnt")
    except OSError:
        return None


def _mounts(path: str) -> list[Mount]:
    try:
        with open(path, "rb") as table:
            lines = table.read().splitlines()
    except OSError:
        return []
    fields = (line.split(b" ") for line in lines)
    return [(f[2], _unescape_octal(f[3]), _unescape_octal(f[4])) for f in fields if len(f) >= 5]


def _seen_here(here: Sequence[Mount], root: bytes) -> Iterator[str]:
    """Where directory `root` of the filesystem of the mounts `here` (this
    namespace's, of one device) shows in this namespace."""
    for _device, our_root, point in here:
        if root == our_root or root.startswith(our_root.rstrip(b"/") + b"/"):
            rest = root[len(our_root.rstrip(b"/")) :]
            # Joined by hand: normpath keeps a leading "//" ("/" + "/data").
            yield os.fsdecode(posixpath.normpath(point.rstrip(b"/") + rest or b"/"))
