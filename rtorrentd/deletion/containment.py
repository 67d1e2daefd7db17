"""Whether a listed path is inside an allowed root and the torrent's own, on disk.

Strategy:
- Paths are exact names (`exact`: from the torrent's metainfo), and still claims
  to verify, never commands: a file is deleted only if it is on disk with the
  listed size (and, later, holds the torrent's bytes: `content`).
- Containment is decided on resolved paths, component by component, under the
  resolved allowed roots. Symlinks *above* the torrent's root (an allowed root
  that is a link, a symlinked download directory) are the administrator's layout:
  they are resolved once, and the result must still lie inside an allowed root.
  Symlinks *inside* the torrent (any directory between its root and a file, and
  the root itself when it is the torrent's own directory) are refused, because
  following one deletes data the torrent does not own. A file that is a symlink
  is removed as a link; its target is never touched.

Every check only looks (lstat, stat, realpath, readlink) and raises
`UnsafeDeletion` at the first doubt.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Collection, Sequence
from pathlib import PurePosixPath

from rtorrentd.deletion.model import Anchor, ListedFile, Location, Probe
from rtorrentd.errors import UnsafeDeletion
from rtorrentd.torrent import FileEntry

_KIND_NAMES = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a fifo",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


BY_HAND = "delete this torrent's data by hand, or remove the torrent without its data"


def refuse(path: str, why: str, advice: str) -> UnsafeDeletion:
    """The error for a doubt: what, why, and what the administrator can do."""
    return UnsafeDeletion(f"refusing to delete {path!r}: {why}; {advice}")


def resolve_allowed_roots(allowed_roots: Sequence[str]) -> tuple[Anchor, ...]:
    """Each allowed root resolved, with its inode; refuses any that is not a usable directory."""
    if isinstance(allowed_roots, str):
        raise TypeError("allowed_roots must be a sequence of paths, not one string")
    if not allowed_roots:
        raise refuse("", "no allowed roots are configured", "set safety.allowed_roots")
    return tuple(_resolve_allowed_root(raw) for raw in allowed_roots)


def _resolve_allowed_root(raw: str) -> Anchor:
    advice = "fix safety.allowed_roots (mount the disk, or remove the entry)"
    if not isinstance(raw, str) or not raw.startswith("/") or "\0" in raw:
        raise refuse(str(raw), "an allowed root must be an absolute path", advice)
    try:
        real = os.path.realpath(raw, strict=True)
        st = os.stat(real)
    except FileNotFoundError as exc:
        raise refuse(raw, "this allowed root does not exist", advice) from exc
    except OSError as exc:
        raise refuse(raw, f"this allowed root cannot be resolved ({exc.strerror})", advice) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise refuse(raw, "this allowed root is not a directory", advice)
    if real == "/":
        # Config refuses "/" too; a root that resolves to it would contain everything.
        raise refuse(raw, "this allowed root is /, so nothing would be protected", advice)
    return Anchor(real, (st.st_dev, st.st_ino))


def normalise_shared(shared: Collection[str]) -> frozenset[str]:
    """Other torrents' paths, each absolute and normalised; refuses any other."""
    if isinstance(shared, str):
        raise TypeError("shared must be a collection of paths, not one string")
    for path in shared:
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
            why = "another torrent lists a path that is not absolute, so sharing cannot be checked"
            raise refuse(str(path), why, "report this; rtorrentd builds these paths itself")
    return frozenset(_normalise(path) for path in shared)


def _normalise(path: str) -> str:
    """Drop empty and "." components; keep "..", which only the kernel can resolve.

    normpath would turn "/x/link/../tv" into "/x/tv", but after a symlink ".." is
    the link target's parent, and rtorrent keeps d.directory as it was set.
    """
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


def check_root(root: str) -> str:
    """The torrent's directory, normalised; refuses one that is not absolute or has '..'."""
    advice = "check the torrent's d.directory in rtorrent"
    if not isinstance(root, str) or not root.startswith("/") or "\0" in root:
        raise refuse(str(root), "the torrent's directory is not an absolute path", advice)
    if ".." in root.split("/"):
        # ".." before a symlink means something else on disk than on paper.
        raise refuse(root, "the torrent's directory contains '..'", advice)
    return _normalise(root)


def anchor_for(real_root: str, anchors: Sequence[Anchor], listed_root: str) -> Anchor:
    """The deepest allowed root holding `real_root`; refuses a root outside all of them."""
    inside = [a for a in anchors if _within(real_root, a.path)]
    if not inside:
        roots = ", ".join(a.path for a in anchors)
        why = f"it resolves to {real_root!r}, which is outside every allowed root ({roots})"
        raise refuse(listed_root, why, "add its download directory to safety.allowed_roots")
    # The deepest one: a nested allowed root may be a separate filesystem.
    return max(inside, key=lambda a: len(PurePosixPath(a.path).parts))


def _within(path: str, base: str) -> bool:
    """Compare components, not text: /data/dl2 is not inside /data/dl."""
    base_parts = PurePosixPath(base).parts
    return PurePosixPath(path).parts[: len(base_parts)] == base_parts


def dedupe(files: Sequence[ListedFile]) -> tuple[FileEntry, ...]:
    """The listed files, each path once; refuses bad paths and one path with two sizes."""
    if not files:
        raise refuse("", "rtorrent listed no files for this torrent", BY_HAND)
    sizes: dict[str, int] = {}
    for entry in files:
        _check_entry(entry)
        if sizes.setdefault(entry.path, entry.size) != entry.size:
            raise refuse(entry.path, "it is listed twice with different sizes", BY_HAND)
    return tuple(FileEntry(path, size) for path, size in sizes.items())


def _check_entry(entry: ListedFile) -> None:
    why = _relative_path_problem(entry.path)
    if why is None and (isinstance(entry.size, bool) or not isinstance(entry.size, int)):
        why = f"its size {entry.size!r} is not an integer"
    elif why is None and entry.size < 0:
        why = f"its size {entry.size} is negative"
    if why is not None:
        raise refuse(str(entry.path), why, BY_HAND)


def _relative_path_problem(rel: object) -> str | None:
    if not isinstance(rel, str) or not rel:
        return "the listed path is empty or not text"
    if "\0" in rel:
        return "the listed path contains a NUL byte"
    if rel.startswith("/"):
        return "the listed path is absolute; rtorrent lists paths relative to the torrent"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "the listed path is not normalised (an empty, '.' or '..' component)"
    return None


def check_root_on_disk(listed_root: str, real_root: str, *, multi_file: bool) -> bool:
    """Whether the root exists; refuses a root that is not a plain directory."""
    advice = "check the torrent's d.directory, then " + BY_HAND
    listed = lstat_or_none(listed_root)
    if multi_file and listed is not None and stat.S_ISLNK(listed.st_mode):
        why = f"the torrent's own directory is a symlink to {real_root!r}"
        raise refuse(listed_root, why, "remove the link by hand (and its target if intended)")
    st = lstat_or_none(real_root)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise refuse(real_root, "the torrent's directory is not a directory", advice)
    return st is not None


def lstat_or_none(path: str) -> os.stat_result | None:
    """lstat `path`; None if it is not there, a refusal if it cannot be examined."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        why = f"it cannot be examined ({exc.strerror})"
        raise refuse(path, why, "check its permissions and the filesystem") from exc


def probe_file(entry: FileEntry, listed_root: str, root: Location, *, root_exists: bool) -> Probe:
    """Check one listed file against the disk; refuses anything doubtful."""
    parts = tuple(entry.path.split("/"))
    location = Location(root.anchor, root.anchor_key, root.parts + parts)
    listed = posixpath.join(listed_root, entry.path)
    st = _walk(root.path, parts) if root_exists else None
    if st is not None:
        _check_file(location.path, st, entry, root.anchor_key[0], root.anchor)
    return Probe(entry, listed, location, st)


def _walk(real_root: str, parts: tuple[str, ...]) -> os.stat_result | None:
    """lstat each directory below the root, then the file; None if something is missing."""
    path = real_root
    for name in parts[:-1]:
        path = posixpath.join(path, name)
        st = lstat_or_none(path)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            why = f"this directory inside the torrent is a symlink to {os.readlink(path)!r}"
            raise refuse(path, why, "following it could delete data elsewhere; " + BY_HAND)
        if not stat.S_ISDIR(st.st_mode):
            raise refuse(path, "the torrent has files below this, but it is no directory", BY_HAND)
    return lstat_or_none(posixpath.join(path, parts[-1]))


def _check_file(path: str, st: os.stat_result, entry: FileEntry, dev: int, anchor: str) -> None:
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFLNK:
        _check_symlink(path, entry)
    elif kind != stat.S_IFREG:
        why = f"it is {_KIND_NAMES.get(kind, 'a special file')}, not a regular file"
        raise refuse(path, why, BY_HAND)
    elif st.st_size != entry.size:
        raise _wrong_size(path, st.st_size, entry.size)
    if st.st_dev != dev:
        why = f"it is on another filesystem than its allowed root {anchor!r}"
        raise refuse(path, why, "add that filesystem's download directory as an allowed root")


def _check_symlink(path: str, entry: FileEntry) -> None:
    """A symlinked file is unlinked as a link; its target must still look like the file.

    A dangling link is refused: nothing shows that it belongs to the torrent.
    """
    target = os.readlink(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        why = f"it is a symlink to {target!r}, which cannot be reached ({exc.strerror})"
        raise refuse(path, why, "remove the link by hand if it is not wanted") from exc
    if not stat.S_ISREG(st.st_mode):
        why = f"it is a symlink to {target!r}, which is not a regular file"
        raise refuse(path, why, BY_HAND)
    if st.st_size != entry.size:
        raise _wrong_size(path, st.st_size, entry.size)


def _wrong_size(path: str, actual: int, listed: int) -> UnsafeDeletion:
    why = f"it is {actual} bytes but rtorrent lists {listed}, so it may be another file"
    return refuse(path, why, "check it, then " + BY_HAND)
