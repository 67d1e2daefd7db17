"""rtorrentd: a retention daemon for rtorrent."""

__version__ = "0.1.0"
