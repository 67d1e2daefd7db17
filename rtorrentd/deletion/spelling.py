"""One file, many spellings: identities that hold on case-insensitive filesystems.

On a case-insensitive filesystem `Movie/a.bin` and `movie/A.BIN` name one file.
The kernel finds it under either spelling, but an identity taken by `stat` is not
always the same: exFAT mounted through FUSE (exfat-fuse, as USB disks and NAS
shares often are) numbers inodes per path spelled, so the two spellings show two
inode numbers (measured; see tests/test_sharing.py). Identities are therefore
taken on the spelling each directory really stores: a component the directory
does not list as written, yet which exists, is replaced by the one stored name
that matches it case-insensitively. When none or several do, the spelling is
unknown, and callers treat that as a doubt.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field

from rtorrentd.errors import UnsafeDeletion

Inode = tuple[int, int]


class Unspellable(UnsafeDeletion):
    """A path whose stored spelling cannot be told: which file it names is unknown."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(
            f"refusing to delete: {path!r} exists, but its directory lists no single name "
            f"matching {name!r} (a case-insensitive filesystem that folds names unlike "
            "Unicode?), so whether it is one of our files is unknown; delete by hand"
        )


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


@dataclass(slots=True)
class Spellings:
    """Directory listings, cached for one round of look-ups (a poll's index, one
    planning): the disk is read once per directory."""

    _names: dict[str, frozenset[str] | None] = field(default_factory=dict)
    _folded: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Each prefix of a path as written -> as stored: the 10,000 torrents of one
    # download directory spell its components once, not once each.
    _spelled: dict[str, str] = field(default_factory=dict)

    def canonical(self, path: str) -> str:
        """`path` with each existing component spelled as its directory stores it;
        a missing one is kept as written. Raises `Unspellable` when an existing
        component matches no stored name, or several."""
        out, written = "", ""
        for number, name in enumerate(path.split("/")):
            written = f"{written}/{name}" if number else name
            known = self._spelled.get(written)
            if known is not None:
                out = known
                continue
            if name not in ("", "."):
                stored = name if name == ".." else self._stored(out or "/", name)
                if stored is None:
                    raise Unspellable(f"{out}/{name}", name)
                out = f"{out}/{stored}"
            self._spelled[written] = out
        return out or "/"

    def key(self, path: str) -> Inode | None:
        """(device, inode) of what `path` leads to (links followed), taken on its
        stored spelling; None when it cannot be reached; `Unspellable` as `canonical`."""
        try:
            st = os.stat(self.canonical(path))
        except (OSError, ValueError):
            return None
        return (st.st_dev, st.st_ino)

    def _stored(self, parent: str, name: str) -> str | None:
        names = self._listing(parent)
        if names is None or name in names:
            return name  # as written: the directory holds it, or cannot be listed
        try:
            os.lstat(os.path.join(parent, name))
        except (OSError, ValueError):
            return name  # not there under any spelling: nothing to match
        if parent not in self._folded:
            folded: dict[str, list[str]] = {}
            for stored in sorted(names):
                folded.setdefault(_fold(stored), []).append(stored)
            self._folded[parent] = folded
        matches = self._folded[parent].get(_fold(name), [])
        return matches[0] if len(matches) == 1 else None

    def _listing(self, directory: str) -> frozenset[str] | None:
        if directory not in self._names:
            try:
                self._names[directory] = frozenset(os.listdir(directory))
            except (OSError, ValueError):
                self._names[directory] = None
        return self._names[directory]
