"""Integration test harness: private rtorrent processes, torrents, a two-instance swarm.

It never imports ``rtorrentd``: it talks to rtorrent with its own stdlib SCGI client,
so a bug in the code under test cannot hide behind the harness.
"""

from .bencode import bencode
from .rtorrent import (
    VERSIONS,
    HarnessError,
    RtorrentProcess,
    free_port,
    poll_until,
    rtorrent_binary,
    scgi_call,
)
from .swarm import SwarmResult, make_swarm
from .torrents import (
    UNREACHABLE_TRACKER,
    TorrentEntry,
    TorrentFactory,
    TorrentFile,
    make_torrent,
    random_bytes,
    rtorrent_text,
)

__all__ = [
    "UNREACHABLE_TRACKER",
    "VERSIONS",
    "HarnessError",
    "RtorrentProcess",
    "SwarmResult",
    "TorrentEntry",
    "TorrentFactory",
    "TorrentFile",
    "bencode",
    "free_port",
    "make_swarm",
    "make_torrent",
    "poll_until",
    "random_bytes",
    "rtorrent_binary",
    "rtorrent_text",
    "scgi_call",
]
