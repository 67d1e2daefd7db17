"""A real two-instance swarm on 127.0.0.1, with no tracker.

Both instances load the same .torrent (the seeder with its data, the leecher with
an empty directory); the leecher is told the seeder's address with rtorrent's
``add_peer`` command (target = info-hash, one ``"host:port"`` string; 0.9.8 and 0.16
alike).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .rtorrent import RtorrentProcess, poll_until
from .torrents import TorrentFile


@dataclass(frozen=True, slots=True)
class SwarmResult:
    """What a finished swarm achieved: the seeder's ratio (x 1000) and how long it took."""

    info_hash: str
    seeder_ratio: int
    seeder_up_total: int
    seconds: float


def make_swarm(
    seeder: RtorrentProcess,
    leecher: RtorrentProcess,
    torrent: TorrentFile,
    *,
    timeout: float = 60.0,
) -> SwarmResult:
    """Seed ``torrent`` from ``seeder`` to ``leecher`` until the seeder's ratio is >= 1.0.

    The seeder loads the torrent from ``torrent.directory`` (which must hold the
    payload) unless it already has it; the leecher downloads into its own
    download directory. Waits, bounded by ``timeout``, until the leecher is
    complete and the seeder's ``d.ratio`` is at least 1000.
    """
    if not torrent.payload_written:
        raise ValueError("the seeder needs the payload: make the torrent with write_payload=True")
    info_hash = torrent.info_hash
    began = time.monotonic()
    if info_hash not in seeder.hashes():
        seeder.load(torrent, complete=True, timeout=timeout)
    leecher.load(torrent, directory=leecher.download_dir, complete=False, timeout=timeout)
    leecher.call("add_peer", info_hash, f"127.0.0.1:{seeder.listen_port}")
    poll_until(
        lambda: leecher.call("d.complete", info_hash) == 1,
        timeout=timeout,
        what="the leecher to complete",
    )
    ratio: int = poll_until(
        lambda: _ratio_at_least(seeder, info_hash, 1000),
        timeout=timeout,
        what="the seeder's ratio to reach 1.0",
    )
    return SwarmResult(
        info_hash=info_hash,
        seeder_ratio=ratio,
        seeder_up_total=seeder.call("d.up.total", info_hash),
        seconds=time.monotonic() - began,
    )


def _ratio_at_least(seeder: RtorrentProcess, info_hash: str, minimum: int) -> int | None:
    ratio: int = seeder.call("d.ratio", info_hash)
    return ratio if ratio >= minimum else None
