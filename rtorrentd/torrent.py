"""The frozen snapshot of one download, and one file of it.

The names a rule can use, and what each attribute means, are declared in
`rtorrentd.vocabulary`; `rtorrent.rows` builds Torrents from rtorrent's replies.

A `Torrent` attribute whose field was not fetched is `None`, and so is one that is
unknown for this torrent (no tracker scrape yet, no finish time): rules treat both
as "unknown", which makes a comparison false.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Torrent:
    """One download as rtorrent reported it in one snapshot. Unfetched fields are None."""

    hash: str
    name: str
    label: str | None = None
    tags: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    ignored: bool | None = None
    throttle: str | None = None
    directory: str | None = None
    path: str | None = None
    multi_file: bool | None = None
    complete: bool | None = None
    started: bool | None = None
    active: bool | None = None
    open: bool | None = None
    private: bool | None = None
    ratio: float | None = None
    size: int | None = None
    done: int | None = None
    uploaded: int | None = None
    downloaded: int | None = None
    up_rate: int | None = None
    down_rate: int | None = None
    added: int | None = None
    finished: int | None = None
    message: str | None = None
    peers: int | None = None
    seeders: int | None = None
    leechers: int | None = None
    scraped: int | None = None
    trackers: tuple[str, ...] | None = None
    saved_times: str | None = None


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a torrent as rtorrent lists it: `f.path` (relative to
    `d.directory`) and `f.size_bytes`."""

    path: str
    size: int
