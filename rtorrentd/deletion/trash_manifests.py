"""Reading the bin entries' manifests, each file parsed once while it is unchanged.

Why: every poll of a daemon with a recycle bin reads every entry's manifest two
or three times (`recover`, `entries`, and the space projection's `binned`); a bin
of thousands of entries, each listing its files, cost seconds of JSON a poll
(bench/trash.py). A manifest is never rewritten in place: it is written under a
temporary name and renamed, and a change of state renames it. So a parsed manifest
is reused while the file at its path is the same one (device, inode, size, mtime,
ctime), unless it changed within the last `RACY_SECONDS`, where a timestamp's
granularity could hide a second change. Kept only for the entries the bin still
lists (`keep_only`): as much memory as one poll's reading holds anyway.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from rtorrentd.deletion.trash_model import (
    COMPLETE,
    PARTIAL,
    RESTORING,
    Manifest,
    manifest_from_json,
)
from rtorrentd.errors import TrashError

RACY_SECONDS = 3.0
_Identity = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Parsed:
    identity: _Identity
    manifest: Manifest


_parsed: dict[str, _Parsed] = {}  # by the manifest file's path
_lock = threading.Lock()  # the instances of a daemon read bins from worker threads


def read_manifest(entry_dir: str) -> tuple[str, Manifest] | None:
    """The state file and manifest of an entry directory; None when it has none.
    Raises TrashError when the manifest cannot be read or is not one."""
    for state in (COMPLETE, RESTORING, PARTIAL):
        path = os.path.join(entry_dir, state)
        try:
            manifest = _manifest_at(path)
        except FileNotFoundError:
            continue
        return state, manifest
    return None


def keep_only(bin_dir: str, names: Collection[str]) -> None:
    """Forget the manifests of `bin_dir`'s entries not among `names` (its listing)."""
    prefix, listed = os.path.join(bin_dir, ""), set(names)
    with _lock:
        for path in [p for p in _parsed if p.startswith(prefix)]:
            if os.path.basename(os.path.dirname(path)) not in listed:
                del _parsed[path]


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _manifest_at(path: str) -> Manifest:
    try:
        seen = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise TrashError(f"cannot read the bin entry's manifest {path} ({exc})") from exc
    with _lock:
        known = _parsed.get(path)
    if known is not None and known.identity == _identity(seen):
        return known.manifest
    try:
        with open(path, "rb") as file:
            read = os.fstat(file.fileno())  # the file parsed, should it have just changed
            data = json.loads(file.read())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise TrashError(f"cannot read the bin entry's manifest {path} ({exc})") from exc
    try:
        manifest = manifest_from_json(data)
    except ValueError as exc:
        raise TrashError(f"the bin entry's manifest {path} is not one ({exc!r})") from exc
    with _lock:
        if read.st_ctime < time.time() - RACY_SECONDS:
            _parsed[path] = _Parsed(_identity(read), manifest)
        else:
            _parsed.pop(path, None)
    return manifest
