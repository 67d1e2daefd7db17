"""Reading the small files a configuration is made of: itself, a password file.

Only a regular file is read, opened without blocking and checked before any
read: a FIFO would block the reader until some writer came (the daemon's loop,
on SIGHUP), and a device such as /dev/zero could be read forever. A size cap
stops a file that is far too large to be what it claims.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

MAX_CONFIG_BYTES = 1024 * 1024

_NOT_REGULAR = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class Refused(Exception):
    """The file exists but is not one to read; `reason` follows "it is"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Contents:
    """What a file held, and its mode (to warn of a password others may read)."""

    data: bytes
    mode: int


def read_regular_file(path: str | os.PathLike[str], limit: int, shown_limit: str) -> Contents:
    """The bytes of the regular file at `path`, at most `limit` of them.

    Raises `OSError` when it cannot be opened or read, `Refused` when it is not a
    regular file or holds more than `limit` bytes (`shown_limit` says how many, as
    a person writes it, like "1 MiB").
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "special")
            raise Refused(f"{kind}, not a regular file")
        data = _read_up_to(descriptor, limit + 1)
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise Refused(f"larger than {shown_limit}")
    return Contents(data, mode)


def _read_up_to(descriptor: int, count: int) -> bytes:
    """Up to `count` bytes, fewer only at the end of the file."""
    data = bytearray()
    while len(data) < count:
        chunk = os.read(descriptor, count - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)
