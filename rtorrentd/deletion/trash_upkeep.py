"""The recycle bin at each poll: finish what a crash left, empty what the space
policies counted on, expire what `keep_for` and `max_size` let go, and measure it.

Each emptied entry is one log event: `trash.emptied` (a space policy needed the
bytes) or `trash.expired` (older than `keep_for`, or beyond `max_size`). In a dry
run nothing is touched; the events say `dry_run=true`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rtorrentd.config.model import TrashSettings
from rtorrentd.deletion import trash
from rtorrentd.engine.space import Binned
from rtorrentd.errors import TrashError
from rtorrentd.logger import get_logger

log = get_logger("rtorrentd.deletion.trash")


@dataclass(frozen=True, slots=True)
class BinState:
    """The bin after a poll's upkeep: entries, their bytes, and bytes emptying freed."""

    entries: int
    bytes: int
    freed: int = 0


def binned(settings: TrashSettings) -> tuple[Binned, ...]:
    """The bin's complete entries for the space projection, oldest first; none
    when the bin cannot be read (logged: then it frees nothing this poll)."""
    try:
        found = trash.entries(settings.path)
        device = os.stat(settings.path).st_dev if found else 0
    except (TrashError, OSError) as exc:
        log.warning("trash.unreadable", path=settings.path, error=str(exc))
        return ()
    return tuple(Binned(e.name, device, e.manifest.frees) for e in found)


def upkeep(
    settings: TrashSettings,
    loaded: Collection[str],
    now: float,
    emptying: Sequence[str],
    *,
    dry_run: bool,
) -> BinState:
    """Recover, empty `emptying` (entry names a space policy counted on), expire;
    the bin's state after. `loaded`: the info-hashes rtorrent has (a restore cut
    short is finished or undone by them). Raises TrashError when the bin cannot
    be read."""
    if not dry_run:
        trash.recover(settings.path, frozenset(loaded))
    found = trash.entries(settings.path)
    freed = 0
    wanted = set(emptying)
    for entry in (e for e in found if e.name in wanted):
        freed += _let_go(entry, "trash.emptied", "a space policy needs the bytes", dry_run)
    rest = [e for e in found if e.name not in wanted]
    old = trash.expired(rest, now, settings.keep_for, settings.max_size)
    for entry in old:
        why = _expiry_reason(entry, now, settings)
        freed += _let_go(entry, "trash.expired", why, dry_run)
    left = [e for e in rest if e not in old] if not dry_run else found
    return BinState(len(left), sum(e.manifest.size for e in left), freed)


def _expiry_reason(entry: trash.Entry, now: float, settings: TrashSettings) -> str:
    keep_for = settings.keep_for
    if keep_for is not None and now - entry.manifest.created >= keep_for:
        return f"older than keep_for ({keep_for:g} s)"
    return f"the bin holds more than max_size ({settings.max_size} bytes); oldest first"


def _let_go(entry: trash.Entry, event: str, reason: str, dry_run: bool) -> int:
    """Empty one entry (unless a dry run); the bytes that frees."""
    manifest = entry.manifest
    done = dry_run or trash.discard(entry)
    log.info(
        event,
        entry=entry.name,
        kind=manifest.kind,
        hash=entry.hash or None,
        name=manifest.title,
        rule=manifest.reason,
        size=manifest.size,
        freed_bytes=0 if dry_run or not done else manifest.frees,
        reason=reason if done else "in use by another process: left for the next poll",
        dry_run=dry_run,
    )
    return manifest.frees if done and not dry_run else 0
