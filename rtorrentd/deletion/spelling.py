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

Listing a directory is what that costs (milliseconds for a flat download
directory of 10,000 entries, per look-up round). It is skipped where the kernel
itself compares names byte for byte (`exact_lookups`): on ext2/3/4 and tmpfs, in a
directory without the casefold attribute, a name that exists is stored as written.
No listing is kept from one round to the next: on exFAT through FUSE a rename to
another spelling changes neither the directory's mtime nor its ctime (measured),
so nothing tells a stale listing from a fresh one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import functools
import os
import struct
import sys
import unicodedata
from collections.abc import Callable
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


# statfs(2) f_type of the filesystems whose lookups are byte for byte unless a
# directory is casefolded (chattr +F): ext2/3/4, tmpfs. Any other (FUSE, vfat, exfat,
# ntfs, cifs, nfs, xfs with ascii-ci, overlay...) is listed.
_EXACT_FILESYSTEMS = frozenset({0xEF53, 0x01021994})
_FS_CASEFOLD_FL = 0x40000000
# FS_IOC_GETFLAGS is _IOR('f', 1, long); the kernel writes an int. Where this number
# is wrong (an architecture encoding ioctls otherwise) the call fails: then listed.
_FS_IOC_GETFLAGS = (2 << 30) | (struct.calcsize("l") << 16) | (ord("f") << 8) | 1
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@functools.cache
def _fstatfs() -> Callable[[int, ctypes.Array[ctypes.c_char]], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.fstatfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p]
    function.restype = ctypes.c_int
    return function


def _filesystem_type(fd: int) -> int | None:
    """statfs's f_type of the filesystem `fd` is on: the first field of struct
    statfs, a native long (a misread is no magic number listed, the safe side)."""
    fstatfs = _fstatfs()
    buffer = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit
    if fstatfs is None or fstatfs(fd, buffer) != 0:
        return None
    return ctypes.c_long.from_buffer(buffer).value


def _casefolded(fd: int) -> bool:
    """Whether the directory `fd` looks names up case-insensitively (chattr +F);
    True when that cannot be told."""
    flags = bytearray(4)
    try:
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags)
    except OSError:
        return True
    return bool(int.from_bytes(flags, sys.byteorder) & _FS_CASEFOLD_FL)


def exact_lookups(directory: str) -> bool:
    """Whether the kernel finds a name in `directory` only as the directory stores
    it, byte for byte: then an existing name is its own stored spelling. False
    whenever that cannot be shown (another filesystem, a casefolded directory,
    one that cannot be opened)."""
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except (OSError, ValueError):
        return False
    try:
        return _filesystem_type(fd) in _EXACT_FILESYSTEMS and not _casefolded(fd)
    finally:
        os.close(fd)


def identity(path: str) -> Inode | None:
    """(device, inode) of what `path` leads to (links followed) as written; None
    when it cannot be reached."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


@dataclass(slots=True)
class Spellings:
    """Directory listings, cached for one round of look-ups (a poll's index, one
    planning): the disk is read once per directory."""

    _names: dict[str, frozenset[str] | None] = field(default_factory=dict)
    _exact: dict[str, bool] = field(default_factory=dict)
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
        return identity(self.canonical(path))

    def joined(self, spelled: str, name: str) -> str:
        """`canonical` of the path `name` (one component) inside `spelled`, a path
        `canonical` returned: a directory's spelling is then worked out once for
        all its entries. Raises `Unspellable` as `canonical`."""
        if name in ("", "."):
            return spelled
        stored = name if name == ".." else self._stored(spelled, name)
        if stored is None:
            raise Unspellable(f"{spelled.rstrip('/')}/{name}", name)
        return f"{spelled.rstrip('/')}/{stored}"

    def _stored(self, parent: str, name: str) -> str | None:
        if self._exact_lookups(parent):
            return name  # there, or not under any spelling: as written either way
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

    def _exact_lookups(self, directory: str) -> bool:
        if directory not in self._exact:
            self._exact[directory] = exact_lookups(directory)
        return self._exact[directory]

    def _listing(self, directory: str) -> frozenset[str] | None:
        if directory not in self._names:
            try:
                self._names[directory] = frozenset(os.listdir(directory))
            except (OSError, ValueError):
                self._names[directory] = None
        return self._names[directory]
