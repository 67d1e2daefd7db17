"""`rtorrentd trash list | restore | empty`: the recycle bin for people."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rtorrentd.config.model import TrashSettings
from rtorrentd.deletion import trash
from rtorrentd.service.report import human_bytes

if TYPE_CHECKING:  # `trash list` imports no rtorrent client (start-up time)
    from rtorrentd.deletion.trash_restore import Restored


def _when(unix: float | None) -> str:
    return "never" if unix is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(unix))


def format_trash_table(found: Sequence[tuple[trash.Entry, TrashSettings]]) -> str:
    """A table of bin entries: when, name, rule, size, expires; then a total."""
    lines = [f"{'WHEN':<16}  {'HASH':<10}  {'SIZE':>10}  {'EXPIRES':<16}  {'RULE':<16}  NAME"]
    total = 0
    for entry, settings in found:
        manifest = entry.manifest
        total += manifest.size
        expires = _when(trash.expires(entry, settings.keep_for))
        short = entry.hash[:10] if entry.hash else manifest.kind
        lines.append(
            f"{_when(manifest.created):<16}  {short:<10}  {human_bytes(manifest.size):>10}  "
            f"{expires:<16}  {manifest.reason[:16]:<16}  {manifest.title}"
        )
    lines.append(f"{len(found)} entries, {human_bytes(total)}")
    return "\n".join(lines)


def restored_text(restored: Restored) -> str:
    """One line saying what a restore did."""
    entry = restored.entry
    record = entry.manifest.torrent
    paths = f"{len(restored.paths)} path(s) put back"
    if record is None:
        return f"restored {entry.manifest.title}: {paths}"
    state = "complete" if restored.complete else "INCOMPLETE after its hash check"
    running = "started" if restored.started else "stopped"
    return f"restored {record.name} ({record.hash}): {paths}; in rtorrent, {state}, {running}"
