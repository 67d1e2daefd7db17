"""rtorrent processes on this machine that use files under the allowed roots, yet
are neither the rtorrent acted on nor one of `[safety] other_rtorrents`.

Their torrents are unknown, so their files cannot be kept: the daemon warns, at
each poll that deletes, naming the process and one path it holds open. Found in
/proc: a process whose name, executable or first arguments say rtorrent (0.16 is
often started through its own loader), and whose working directory or open files
lie under an allowed root. `rtorrentd check` reads no rtorrent, so it cannot know
which rtorrent is which: polls that delete (dry runs too) do it. Processes of other
users are invisible without root, and an rtorrent in another PID namespace (a
container) reports a pid this machine does not know: a warning, never a refusal.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

_PROC = "/proc"
_NAME = "rtorrent"


@dataclass(frozen=True, slots=True)
class Unlisted:
    """An unlisted rtorrent and one path under an allowed root that it uses."""

    pid: int
    path: str


def unlisted_rtorrents(
    allowed_roots: Sequence[str], known: Collection[int], proc: str = _PROC
) -> list[Unlisted]:
    """Every rtorrent process not in `known` (pids) that uses a path under an
    allowed root (each root resolved), with the first such path found."""
    roots = [os.path.realpath(r) for r in allowed_roots]
    found: list[Unlisted] = []
    for pid in _pids(proc):
        if pid in known or pid == os.getpid() or not _is_rtorrent(proc, pid):
            continue
        for path in _paths_used(proc, pid):
            if any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
                found.append(Unlisted(pid, path))
                break
    return found


def _pids(proc: str) -> Iterator[int]:
    try:
        names = os.listdir(proc)
    except OSError:
        return
    yield from (int(name) for name in names if name.isdigit())


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def _is_rtorrent(proc: str, pid: int) -> bool:
    if _read(f"{proc}/{pid}/comm").strip().startswith(_NAME.encode()):
        return True  # rtorrent names its main thread "rtorrent main"
    try:
        exe = os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        exe = ""
    argv = _read(f"{proc}/{pid}/cmdline").split(b"\0")[:6]
    names = [os.path.basename(exe), *(os.path.basename(os.fsdecode(a)) for a in argv)]
    return _NAME in names


def _paths_used(proc: str, pid: int) -> Iterator[str]:
    for link in (f"{proc}/{pid}/cwd", *_fds(proc, pid)):
        try:
            target = os.readlink(link)
        except OSError:
            continue
        if target.startswith("/"):
            yield target


def open_files(pids: Collection[int], proc: str = _PROC) -> list[str]:
    """The absolute paths the processes `pids` hold open (none where /proc does
    not show them: another user's process, another PID namespace)."""
    found: list[str] = []
    for pid in pids:
        for link in _fds(proc, pid):
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target.startswith("/"):
                found.append(target.removesuffix(" (deleted)"))
    return found


def _fds(proc: str, pid: int) -> list[str]:
    try:
        return [f"{proc}/{pid}/fd/{fd}" for fd in os.listdir(f"{proc}/{pid}/fd")]
    except OSError:
        return []
