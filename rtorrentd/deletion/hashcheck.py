"""Hands off a torrent that rtorrent is hash-checking.

A torrent under check still reports `d.complete=1` and `d.state=1`, yet `d.stop` or
`d.close` during the check can deadlock rtorrent 0.9.8 for good (its RPC thread
waits in `hash_stop` while holding the global lock). So no step touches it until
the check is over and settled: not hashing, and, if started, checked. The next
poll retries. Pure.
"""

from __future__ import annotations

# What the executor reads for this, in this order (`RtorrentClient.values`).
METHODS = ("d.hashing", "d.is_hash_checked")


def busy_reason(hashing: object, checked: object, started: bool | None) -> str:
    """Why the torrent must be left alone now, or "" when it may be touched.

    `hashing` and `checked` are rtorrent's replies to `METHODS`; anything but the
    integers rtorrent sends counts as busy (a doubt waits for the next poll).
    """
    if not isinstance(hashing, int) or not isinstance(checked, int):
        return f"rtorrent sent d.hashing={hashing!r}, d.is_hash_checked={checked!r}"
    if hashing:
        return "rtorrent is hash-checking it; the next poll retries"
    if started is not False and not checked:
        return "started but not yet hash-checked (queued for a check); the next poll retries"
    return ""
