"""A write-ahead record of deletions under way, so that one begun is always finished.

Completion used to rest on rtorrent's session: stop, close and save it before the
first unlink, and a later poll finds the torrent stopped and finishes it. That
save may not happen: 0.16 saves in the background (a kill brings the torrent back
*started*), 0.9.8 reports success on a full disk (it comes back *incomplete* and
downloads again). Either way its rule no longer matches and nothing finishes it.

So before `d.stop`, the deletion is recorded in the daemon's state directory (one
small file per torrent, written to a temporary name, fsync'd, renamed, the
directory fsync'd), and removed once the torrent is erased. Every poll finishes
each recorded deletion whatever rtorrent did meanwhile (restarted it started or
stopped, incomplete, session not saved), with every other check unchanged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rtorrentd.errors import RtorrentdError

_HASH = re.compile(r"[0-9A-F]{40}")


class JournalError(RtorrentdError):
    """The state directory cannot be written or read; no deletion may begin."""


@dataclass(frozen=True, slots=True)
class Intent:
    """A deletion that has begun: which torrent, under which rule, since when."""

    hash: str
    name: str
    rule: str
    began: float
    action: str = "delete"  # or "trash": a resumed deletion ends as it began
    started: bool | None = None  # d.state before the stop (trash restores it)


def default_directory(env: Mapping[str, str]) -> str:
    """systemd's `StateDirectory=` ($STATE_DIRECTORY, the first if several), else
    $XDG_STATE_HOME/rtorrentd, else ~/.local/state/rtorrentd."""
    if env.get("STATE_DIRECTORY"):
        return env["STATE_DIRECTORY"].split(":")[0]
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local/state")
    return os.path.join(base, "rtorrentd")


class Journal:
    """Deletions under way, as files `<HASH>.json` in `directory`/deleting."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.join(directory, "deleting")

    def begin(self, intent: Intent) -> None:
        """Record `intent` durably; raises `JournalError` when it cannot be."""
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            final = self._path(intent.hash)
            temporary = final + ".new"
            payload = json.dumps(
                {
                    "hash": intent.hash,
                    "name": intent.name,
                    "rule": intent.rule,
                    "began": intent.began,
                    "action": intent.action,
                    "started": intent.started,
                }
            ).encode()
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, final)
            self._sync_directory()
        except OSError as exc:
            raise JournalError(f"cannot record the deletion in {self.directory} ({exc})") from exc

    def end(self, info_hash: str) -> None:
        """Forget a finished deletion (nothing if it was not recorded)."""
        try:
            os.unlink(self._path(info_hash))
            self._sync_directory()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise JournalError(f"cannot clear the finished deletion ({exc})") from exc

    def pending(self) -> tuple[Intent, ...]:
        """Every recorded deletion, oldest first; unreadable records are errors."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise JournalError(f"cannot read {self.directory} ({exc})") from exc
        found = [self._read(n) for n in names if n.endswith(".json")]
        return tuple(sorted(found, key=lambda i: i.began))

    def _read(self, name: str) -> Intent:
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as record:
                data = json.loads(record.read())
            started = data.get("started")
            intent = Intent(
                str(data["hash"]),
                str(data["name"]),
                str(data["rule"]),
                float(data["began"]),
                str(data.get("action", "delete")),
                None if started is None else bool(started),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"cannot read the deletion record {path} ({exc})") from exc
        if not _HASH.fullmatch(intent.hash) or name != f"{intent.hash}.json":
            raise JournalError(f"the deletion record {path} names another torrent")
        return intent

    def _path(self, info_hash: str) -> str:
        if not _HASH.fullmatch(info_hash):
            raise JournalError(f"not an info-hash: {info_hash!r}")
        return os.path.join(self.directory, f"{info_hash}.json")

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
