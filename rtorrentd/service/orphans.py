"""Orphan cleanup for the daemon and `rtorrentd orphans`: which rtorrents count,
what rtorrentd owns, the log events, and the report for people.

Every rtorrent the configuration names counts: the one acted on, each of
`[safety] other_rtorrents`, and, in a daemon of several instances (`-c DIR`), every
other instance's rtorrent. The daemon scans at most every `[orphans] interval`,
after a poll, with the disk work in worker threads (`deletion.orphans`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from rtorrentd.config.model import Config, OrphanSettings
from rtorrentd.deletion import preflight, trash
from rtorrentd.deletion.journal import default_directory
from rtorrentd.deletion.model import Identity
from rtorrentd.deletion.orphan_listing import Source
from rtorrentd.deletion.orphans import Cleaned, Move, Moved, Scan, clean, scan
from rtorrentd.engine.orphans import Kind
from rtorrentd.errors import OrphanScanRefused
from rtorrentd.logger import get_logger
from rtorrentd.redact import redact_url
from rtorrentd.rtorrent.client import RtorrentClient
from rtorrentd.service.poll import other_clients
from rtorrentd.service.report import human_bytes

log = get_logger("rtorrentd.service.orphans")

ClientFor = Callable[[Config], RtorrentClient]


def sources_for(
    name: str,
    config: Config,
    client: RtorrentClient,
    *,
    peers: Mapping[str, Config] | None = None,
    client_for: ClientFor | None = None,
) -> list[Source]:
    """The rtorrent acted on (named `name`), every `[safety] other_rtorrents`, and
    each other instance in `peers` (their clients from `client_for`); each URL once."""
    sources = [Source(name, config.rtorrent.url, client)]
    for url, other in other_clients(config):
        sources.append(Source(redact_url(url), url, other))
    for peer, peer_config in (peers or {}).items():
        url = peer_config.rtorrent.url
        if peer == name or client_for is None or url in {s.url for s in sources}:
            continue
        sources.append(Source(peer, url, client_for(peer_config)))
    return sources


NO_BIN = "[orphans] moves orphans into the recycle bin, and there is none ([trash] path)"


def bin_mover(config: Config) -> Move | None:
    """What moves orphans into the configuration's recycle bin; None without one.

    Each call is one bin entry of kind "orphan" (`trash.trash_paths`): the files of
    one allowed root, renamed, each only if it is still the identity re-checked."""
    if config.trash is None:
        return None
    bin_dir = config.trash.path

    def move(root: str, found: Sequence[tuple[str, Identity]]) -> Moved:
        paths = [path for path, _ in found]
        out = trash.trash_paths(bin_dir, root, paths, "orphan cleanup", identities=dict(found))
        return out.moved, [(note.path, note.reason) for note in out.skipped]

    return move


def owned_paths(
    config: Config, extra: Sequence[str] = (), env: Mapping[str, str] = os.environ
) -> list[str]:
    """What rtorrentd owns, never an orphan: its state directory, its configuration
    file, the metrics textfile, and `extra` (the recycle bin). rtorrent's session
    directories are added by the scan."""
    paths = [config.daemon.state_dir or default_directory(env), os.path.abspath(config.source)]
    if config.metrics is not None and config.metrics.textfile:
        paths.append(config.metrics.textfile)
    if config.trash is not None:  # the bin may lie inside an allowed root
        paths.append(config.trash.path)
    return [*paths, *extra]


async def scan_and_clean(
    sources: Sequence[Source],
    config: Config,
    settings: OrphanSettings,
    *,
    now: float,
    move: Move | None,
    owned: Sequence[str] = (),
    filesystems: preflight.Filesystems | None = None,
    clock: Callable[[], float] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[Scan, list[Cleaned]]:
    """One scan, logged; the orphans moved with `move` (None: a dry run, each
    logged as `orphans.planned`)."""
    found, listing = await scan(
        sources,
        config.safety.allowed_roots,
        settings,
        now=now,
        owned=owned_paths(config, owned),
        filesystems=filesystems,
    )
    if found.refused or listing is None:
        log.warning("orphans.refused", reason=found.refused, instances=list(found.instances))
        return found, []
    _log_found(found)
    if move is None:
        for orphan in found.orphans:
            log.info("orphans.planned", path=orphan.seen.path, why=orphan.reason)
        return found, []
    try:
        kwargs = {} if clock is None else {"clock": clock}
        done = await clean(found, listing, settings, move, should_stop=should_stop, **kwargs)
    except OrphanScanRefused as exc:
        log.warning("orphans.refused", reason=str(exc), instances=list(found.instances))
        return found, []
    for outcome in done:
        _log_outcome(outcome)
    return found, done


WATCHED = "a directory an rtorrent watches for new .torrent files"
MOUNT_POINT = (
    "a mount point fstab or a systemd unit names (mounted or not), or on the way to one; "
    "or a directory mounted elsewhere (a bind mount's source: a container's volume)"
)


def _log_found(found: Scan) -> None:
    log.info(
        "orphans.scanned",
        orphans=len(found.orphans),
        bytes=found.bytes,
        held=found.held,
        held_bytes=found.held_bytes,
        entries=found.entries,
        torrents=found.torrents,
        listed_files=found.listed_files,
        instances=list(found.instances),
        duration_ms=round(found.seconds * 1000),
    )
    for path in found.unreadable:
        log.warning("orphans.unreadable", path=path)
    for path in found.mount_points:
        log.info("orphans.skipped", path=path, why=MOUNT_POINT)
    for path in found.watched:
        log.info("orphans.skipped", path=path, why=WATCHED)
    if found.caution:
        log.warning("orphans.caution", reason=found.caution)


def _log_outcome(outcome: Cleaned) -> None:
    seen = outcome.orphan.seen
    fields = {"path": seen.path, "kind": seen.kind.value, "size": seen.size}
    if outcome.result == "failed":
        log.error("orphans.failed", error=outcome.detail, **fields)
    elif outcome.result == "kept":
        log.info("orphans.kept", why=outcome.detail, **fields)
    else:  # moved, removed
        log.info(f"orphans.{outcome.result}", why=outcome.orphan.reason, **fields)


# --- for people ---------------------------------------------------------------------------


def shown(path: str) -> str:
    """A path on one line whatever its bytes: control characters and bytes that
    are not UTF-8 escaped (`\\n`, `\\xe9`)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def format_scan(found: Scan, settings: OrphanSettings) -> str:
    """What a scan would move, and why; or why it is refused."""
    instances = ", ".join(found.instances)
    if found.refused:
        why = f"orphan scan refused: {found.refused}"
        return f"{why}\nnothing would be moved (instances: {instances})"
    lines = [
        f"scanned {found.entries} entries; {found.torrents} torrents of {instances} list "
        f"{found.listed_files} files",
    ]
    if not found.orphans:
        lines.append("no orphan")
    else:
        lines.append(
            f"would move {len(found.orphans)} orphans ({human_bytes(found.bytes)}) to the bin:"
        )
    for orphan in found.orphans:
        size = "dir" if orphan.seen.kind is Kind.DIR else human_bytes(orphan.seen.size)
        lines.append(f"  {size:>10}  {shown(orphan.seen.path)}")
        lines.append(f"              {orphan.reason}")
    if found.held:
        lines.append(
            f"{found.held} more ({human_bytes(found.held_bytes)}) wait for later scans "
            f"(max_files {settings.max_files}, max_bytes {human_bytes(settings.max_bytes)})"
        )
    for path in found.unreadable:
        lines.append(f"cannot list {shown(path)}: nothing in it is moved")
    for path in found.mount_points:
        lines.append(f"kept {shown(path)}: {MOUNT_POINT}")
    for path in found.watched:
        lines.append(f"kept {shown(path)}: {WATCHED}")
    if found.caution:
        lines.append(f"caution: {found.caution}")
    return "\n".join(lines)
