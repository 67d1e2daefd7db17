"""Whether rtorrent's session files for a torrent have really been written.

rtorrent 0.16.6+ answers `d.save_full_session` at once and writes the files from
another thread (each as ``*.new``, then renamed; RTORRENT.md): "saved" means the
torrent's ``<HASH>.torrent.rtorrent`` (the last file renamed) has been replaced
since we asked, and none of its files is half-written. Only the session directory
can tell, so rtorrentd must see it at the path rtorrent reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import anyio

from rtorrentd.errors import SessionNotSaved

__all__ = ["SAVE_TIMEOUT", "SessionFile", "check_visible", "wait_until_replaced"]

# A save is a few small files; rtorrent writes them within milliseconds, or within
# seconds behind a queue of thousands of other torrents' saves.
SAVE_TIMEOUT = 30.0
_FIRST_LOOK = 0.002
_LONGEST_LOOK = 0.05

# (inode, mtime, size): the rename of a new file gives the name another inode.
Signature = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class SessionFile:
    """The session files of one torrent, in `directory` (rtorrent's `session.path`)."""

    directory: str
    info_hash: str

    @property
    def names(self) -> tuple[str, ...]:
        """rtorrent's three files, in the order it renames them into place."""
        stem = f"{self.info_hash.upper()}.torrent"
        return (stem, f"{stem}.libtorrent_resume", f"{stem}.rtorrent")

    @property
    def last(self) -> str:
        """The file renamed last: once it is new, the save is complete."""
        return os.path.join(self.directory, self.names[-1])

    def signature(self) -> Signature | None:
        """What the last file is now; None when there is none (a new torrent)."""
        try:
            st = os.stat(self.last)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SessionNotSaved(
                f"cannot read rtorrent's session file {self.last!r} ({exc.strerror}): "
                "rtorrentd confirms session saves there; let its user read the directory"
            ) from exc
        return st.st_ino, st.st_mtime_ns, st.st_size

    def pending(self) -> bool:
        """Whether any of the files is still being written (``*.new``)."""
        return any(os.path.exists(os.path.join(self.directory, f"{n}.new")) for n in self.names)


def check_visible(directory: str, version: str) -> None:
    """Refuse to go on when rtorrent's session directory cannot be seen from here."""
    if not os.path.isdir(directory):
        raise SessionNotSaved(
            f"rtorrent {version} saves its session in the background, and rtorrentd "
            f"confirms each save by looking at the session directory {directory!r}, which "
            "it cannot see: run rtorrentd where rtorrent's session.path is visible at the "
            "same path (same machine, or the same mount point in both containers)"
        )


async def wait_until_replaced(
    session: SessionFile, before: Signature | None, *, timeout: float = SAVE_TIMEOUT
) -> None:
    """Return once `session`'s files have been written anew since `before` was taken;
    raise `SessionNotSaved` after `timeout` seconds.

    Polls the files, quickly at first (a save takes milliseconds), then every 50 ms.
    """
    interval = _FIRST_LOOK
    with anyio.move_on_after(timeout):
        while True:
            now = session.signature()
            if now is not None and now != before and not session.pending():
                return
            await anyio.sleep(interval)
            interval = min(interval * 2, _LONGEST_LOOK)
    raise SessionNotSaved(
        f"rtorrent did not write {session.last!r} within {timeout:g} s of "
        "d.save_full_session: is its session disk full or very slow? "
        "Nothing was deleted; the next poll tries again"
    )
