"""Orphans, decided: given what every loaded torrent lists, an entry's stat, the
time and `[orphans]`, is the entry an orphan, and why (or why not)? Pure.

The edge (`deletion.orphan_listing`, `deletion.orphan_walk`) reads rtorrent and
the disk; everything it learns reaches this module as values:
- `Listed`: the paths every loaded torrent of every instance lists (its files,
  the directories on their way, its tied `.torrent`), and the identities
  (device, inode) those paths reach, with and without following a link;
- `Seen`: one entry found under an allowed root (lstat, never followed);
- `Exclude`: the `exclude` globs, compiled.

An entry is an orphan only if every one of these holds: it is a regular file, a
symlink (the link goes, never its target) or an empty directory; no glob excludes
it or a directory above it; no torrent lists its path; its identity is no listed
file's (a hard link of a listed file, or a listed file reached by another path:
a symlinked or bind-mounted directory); and it is older than `min_age` by its
modification time *and* its change time (a file copied in with its old mtime, or
hard-linked or renamed a moment ago, has a new ctime).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from rtorrentd.config.model import OrphanSettings

Inode = tuple[int, int]


class Kind(Enum):
    """What an entry on disk is (from lstat: links are never followed)."""

    FILE = "file"
    LINK = "symlink"
    DIR = "directory"
    OTHER = "special file"  # fifo, socket, device: never an orphan


@dataclass(frozen=True, slots=True)
class Seen:
    """One entry under an allowed root, as the walk found it (lstat)."""

    path: str  # absolute, under the resolved root (`os.fsdecode` text)
    rel: str  # relative to that root
    kind: Kind
    inode: Inode
    nlink: int
    size: int
    mtime: float
    ctime: float
    empty: bool = False  # a directory without any entry


@dataclass(frozen=True, slots=True)
class Verdict:
    """`orphan`, with `why` (the report's reason), or not, with `why` not."""

    orphan: bool
    why: str


class Listed:
    """What every loaded torrent lists: normalised paths, and identities.

    Memory is this set, never the tree walked: one entry per listed file and per
    directory on the way to one.
    """

    def __init__(self) -> None:
        self.paths: set[str] = set()
        # (device, inode) packed into one int: a third of a tuple's memory.
        self.inodes: set[int] = set()
        self.files = 0

    def add_file(self, path: str, *, count: bool = True) -> list[str]:
        """Add a listed file's path and every directory above it; returns the
        directories not seen before (whose identities the edge adds). `count`:
        False for another spelling of a file already counted."""
        path = normalise(path)
        self.files += count
        self.paths.add(path)
        new: list[str] = []
        parent = posixpath.dirname(path)
        while parent not in self.paths and parent != "/":
            self.paths.add(parent)
            new.append(parent)
            parent = posixpath.dirname(parent)
        return new

    def add_inodes(self, inodes: Iterable[Inode]) -> None:
        """Identities a listed path reaches (lstat, and stat through links)."""
        self.inodes.update(_packed(inode) for inode in inodes)

    def lists_inode(self, inode: Inode) -> bool:
        """Whether a listed path reaches `inode`."""
        return _packed(inode) in self.inodes

    def why_listed(self, seen: Seen) -> str:
        """Why a torrent lists `seen`, or "" when none does."""
        if seen.path in self.paths:
            what = "directory holds a listed file" if seen.kind is Kind.DIR else "path"
            return f"a loaded torrent lists this {what}"
        if _packed(seen.inode) in self.inodes:
            return (
                "it is a listed file or directory under another name (a hard link, or "
                "reached through a symlinked or bind-mounted directory)"
            )
        return ""


def _packed(inode: Inode) -> int:
    return inode[0] << 64 | inode[1]


def normalise(path: str) -> str:
    """Drop empty and "." components (keep "..": only the kernel resolves it)."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


# --- exclusions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exclude:
    """The `exclude` globs. A glob matches a path relative to the allowed root, and
    everything under what it matches; one without a leading "/" matches at any
    depth (`*.part` anywhere, `.stfolder/**` in any directory), one with a leading
    "/" or "./" only at the root. `*` and `?` stay
    within one name, `**` spans any number of directories, `[abc]`/`[!abc]` as in
    the shell."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def match(self, rel: str) -> str:
        """The glob that excludes `rel` (or a directory above it), or ""."""
        for glob, pattern in self.patterns:
            if pattern.fullmatch(rel):
                return glob
        return ""


def compile_excludes(globs: Sequence[str]) -> Exclude:
    """Compile `[orphans] exclude`."""
    return Exclude(tuple((glob, re.compile(_translate(glob), re.DOTALL)) for glob in globs))


def _translate(glob: str) -> str:
    # "./x" is written to mean the root's x; a "." component names the directory
    # it is in (a glob keeping them would never match: rel has none).
    anchored = glob.startswith(("/", "./"))
    parts = [p for p in glob.strip("/").split("/") if p not in ("", ".")]
    body = ""
    for number, part in enumerate(parts):
        last = number == len(parts) - 1
        if part == "**":
            # "a/**" matches a itself too; "**/b" and "a/**/b" any directories between.
            body += "(?:/.*)?" if last and number else "(?:.*/)?" if not last else ".*"
            continue
        body += _translate_name(part) + ("" if last else "/")
    body = body.replace("/(?:/.*)?", "(?:/.*)?")
    prefix = "" if anchored else "(?:.*/)?"
    return prefix + body + "(?:/.*)?"


def _translate_name(part: str) -> str:
    out, pos = "", 0
    while pos < len(part):
        char = part[pos]
        pos += 1
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[" and (end := part.find("]", pos + 1)) != -1:
            inside = part[pos:end]
            negate = inside.startswith("!")
            inside = inside[1:] if negate else inside
            escaped = "".join("\\" + c if c in "\\^[]" else c for c in inside)
            out += f"[^/{escaped}]" if negate else f"[{escaped}]"
            pos = end + 1
        else:
            out += re.escape(char)
    return out


# --- one entry ---------------------------------------------------------------------------


def classify(
    seen: Seen, listed: Listed, now: float, settings: OrphanSettings, exclude: Exclude
) -> Verdict:
    """Whether `seen` is an orphan, and why (or why not)."""
    if seen.kind is Kind.OTHER:
        return Verdict(False, "a special file (fifo, socket or device)")
    if seen.kind is Kind.DIR and not seen.empty:
        return Verdict(False, "a directory that is not empty")
    glob = exclude.match(seen.rel)
    if glob:
        return Verdict(False, f"excluded by {glob!r}")
    why = listed.why_listed(seen)
    if why:
        return Verdict(False, why)
    young = too_young(seen, now, settings.min_age)
    if young:
        return Verdict(False, young)
    return Verdict(True, "")


def too_young(seen: Seen, now: float, min_age: float) -> str:
    """Why `seen` is not old enough, or "" when both its times are."""
    for what, when in (("modified", seen.mtime), ("changed (ctime)", seen.ctime)):
        if now - when < min_age:
            return f"{what} {human_age(now - when)} ago, less than min_age {human_age(min_age)}"
    return ""


def human_age(seconds: float) -> str:
    """`3d 4h`, `2h 5m`, `40s`: for reasons and reports."""
    seconds = max(0, int(seconds))
    for unit, size, smaller, small in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if seconds >= size:
            rest = (seconds % size) // small
            return f"{seconds // size}{unit}" + (f" {rest}{smaller}" if rest else "")
    return f"{seconds // 60}m" if seconds >= 60 else f"{seconds}s"


def orphan_reason(seen: Seen, now: float, instances: Sequence[str]) -> str:
    """Why `seen` is an orphan, for the report and the log."""
    who = ", ".join(instances)
    if seen.kind is Kind.DIR:
        what = "an empty directory no loaded torrent's files lie in"
    else:
        what = f"listed by no loaded torrent of {who}"
    if seen.kind is Kind.FILE:
        links = seen.nlink - 1
        what += (
            "; no other hard link"
            if not links
            else f"; {links} other hard link{'s' * (links > 1)}, none of them listed"
        )
    elif seen.kind is Kind.LINK:
        what += "; a symlink (it goes, its target stays)"
    ages = f"modified {human_age(now - seen.mtime)} ago, changed {human_age(now - seen.ctime)} ago"
    return f"{what}; {ages}"


# --- a scan as a whole -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TorrentState:
    """What the scan needs to know of one loaded torrent to trust the listing."""

    instance: str
    hash: str
    name: str
    directory: str
    base_path: str
    multi_file: bool
    complete: bool
    started: bool
    hashing: int
    checked: int


def busy_reason(torrent: TorrentState) -> str:
    """Why this torrent's files cannot be told now (the whole scan is refused), or ""."""
    who = f"{torrent.hash} ({torrent.name!r}) of {torrent.instance}"
    if torrent.hashing:
        return f"{who} is being hash-checked"
    if torrent.started and not torrent.checked:
        return f"{who} is started but not yet hash-checked"
    if not torrent.directory.startswith("/"):
        return f"{who} has d.directory {torrent.directory!r}, which is not absolute"
    expected = (
        torrent.directory if torrent.multi_file else posixpath.join(torrent.directory, torrent.name)
    )
    if torrent.base_path and normalise(torrent.base_path) != normalise(expected):
        return (
            f"{who} has its data at {torrent.base_path!r} but d.directory says "
            f"{torrent.directory!r}: a move under way"
        )
    return ""


@dataclass(slots=True)
class Budget:
    """The caps of one scan (`max_files`, `max_bytes`), like the deletion valves:
    what does not fit waits for the next scan."""

    files: int
    bytes: int
    held: int = 0
    held_bytes: int = 0

    def take(self, size: int) -> bool:
        """Whether one more entry of `size` bytes fits; counts what does not."""
        if self.files >= 1 and size <= self.bytes:
            self.files -= 1
            self.bytes -= size
            return True
        self.held += 1
        self.held_bytes += size
        return False
