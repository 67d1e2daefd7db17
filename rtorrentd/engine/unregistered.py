"""`unregistered`: the tracker says it no longer knows the torrent. Pure.

A tracker's answer reaches rtorrent's `d.message` as, e.g.,
`Tracker: [Failure reason "Unregistered torrent"]`; a connection failure as
curl's text, e.g. `Tracker: [Couldn't connect to server]`. The phrasings below
are matched case-insensitively anywhere in the message.

Deleting on a tracker's word is only safe when the tracker is up and means it, so
two guards make `unregistered` false for *every* torrent of a tracker this poll:

- one of its torrents has a message saying the tracker is down or unreachable
  (`DOWN_PHRASES`: it may answer anything for the others too);
- many of its torrents say "unregistered" at once (at least `GUARD_COUNT`, and
  at least `GUARD_SHARE` of the tracker's torrents here): that is a tracker
  whose database is away, not a site that removed that many at once.

A torrent with several trackers is guarded if any of them is. The guards cannot
tell a small library's outage from a purge (two torrents of two both saying
"unregistered"): `message_age` is the grace for that (README).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

# Phrases a tracker answers with when it has no such torrent, with where they come
# from. Sources: qbit_manage, modules/util.py `TorrentMessages.UNREGISTERED_MSGS`
# (StuffAnThings/qbit_manage); tqm, pkg/config/torrent.go
# `defaultUnregisteredStatuses` (autobrr/tqm); the tracker software named.
# Left out on purpose: BeyondHD's one-word reasons ("Dead", "Dupe", "Other"),
# which qbit_manage applies to BHD only, and tqm's "unknown" and "uploaded":
# too short to tell from other messages; match them with `message ~` yourself.
UNREGISTERED_PHRASES: tuple[tuple[str, str], ...] = (
    ("unregistered torrent", "Ocelot (Gazelle sites)"),
    ("unregistered", "qbit_manage, tqm"),
    ("torrent not registered with this tracker", "the wording issue 13 quotes"),
    ("not registered", "qbit_manage, tqm"),
    ("torrent not found", "qbit_manage, tqm"),
    ("torrent is not found", "qbit_manage, tqm"),
    ("torrent does not exist", "tqm"),
    ("not exist", "qbit_manage, tqm"),
    ("unknown torrent", "qbit_manage"),
    ("infohash not found", "UNIT3D (Blutopia): qbit_manage, tqm"),
    ("torrent has been deleted", "UNIT3D (Blutopia): qbit_manage, tqm"),
    ("torrent deleted", "NexusPHP, qbit_manage"),
    ("torrent banned", "NexusPHP, qbit_manage"),
    ("torrent has been nuked", "tqm"),
    ("torrent is not authorized for use on this tracker", "qbit_manage, tqm"),
    ("trump", "trumped: qbit_manage, tqm"),
    ("retitled", "qbit_manage, tqm"),
    ("specifically banned", "BeyondHD, qbit_manage, tqm"),
    ("complete season uploaded", "BeyondHD, qbit_manage, tqm"),
    ("season pack out", "BeyondHD, qbit_manage"),
    ("tracker nicht registriert", "German sites, qbit_manage, tqm"),
    ("torrent existiert nicht", "German sites, qbit_manage, tqm"),
    ("torrent nicht gefunden", "German sites, qbit_manage, tqm"),
)

# Phrases that say the tracker (or the way to it) is down, not that the torrent is
# gone; they win over the phrases above. Sources: curl's error texts, which
# rtorrent shows as they are; qbit_manage `IGNORE_MSGS` and `EXCEPTIONS_MSGS`;
# tqm `trackerDownStatuses`. "down" is matched as a word only ("download" is not).
DOWN_PHRASES: tuple[tuple[str, str], ...] = (
    ("couldn't connect", "curl CURLE_COULDNT_CONNECT"),
    ("could not connect", "curl, older wording"),
    ("couldn't resolve", "curl CURLE_COULDNT_RESOLVE_HOST"),
    ("could not resolve", "curl 7.x"),
    ("timeout was reached", "curl CURLE_OPERATION_TIMEDOUT"),
    ("timed out", "curl, tqm"),
    ("timeout", "tqm"),
    ("connection refused", "curl, tqm"),
    ("connection reset", "curl CURLE_RECV_ERROR"),
    ("failure when receiving data", "curl CURLE_RECV_ERROR"),
    ("empty reply from server", "curl CURLE_GOT_NOTHING"),
    ("server returned nothing", "curl CURLE_GOT_NOTHING, older wording"),
    ("ssl connect error", "curl CURLE_SSL_CONNECT_ERROR"),
    ("bad gateway", "HTTP 502: qbit_manage, tqm"),
    ("service unavailable", "HTTP 503: tqm"),
    ("gateway timeout", "HTTP 504: qbit_manage"),
    ("internal server error", "HTTP 500: tqm"),
    ("unknown http error", "HTTP 520 (Cloudflare): qbit_manage, tqm"),
    ("maintenance", "tqm"),
    ("tracker unavailable", "qbit_manage, tqm"),
    ("announce is currently unavailable", "BeyondHD: qbit_manage"),
    ("unreachable", "qbit_manage, tqm"),
    ("not responding", "tqm"),
    ("not working", "tqm"),
    ("could not parse bencoded data", "a broken reply: qbit_manage"),
    ("stream truncated", "a broken reply: qbit_manage"),
    ("passkey", "an account problem, not the torrent's: qbit_manage"),
    ("client limit", "too many clients, not the torrent's: qbit_manage"),
    ("postponed", "BeyondHD: qbit_manage"),
    ("down", "qbit_manage, tqm; as a word"),
)

GUARD_COUNT = 10  # "many": at least this many torrents of one tracker...
GUARD_SHARE = 0.25  # ...and at least this share of its torrents loaded here


def _pattern(phrases: Sequence[tuple[str, str]]) -> re.Pattern[str]:
    parts = [r"\b" + re.escape(p) + r"\b" if p == "down" else re.escape(p) for p, _ in phrases]
    return re.compile("|".join(parts), re.IGNORECASE)


_UNREGISTERED = _pattern(UNREGISTERED_PHRASES)
_DOWN = _pattern(DOWN_PHRASES)
_JOINED = " /// "  # how rtorrent 0.16 joins the answers of a tracker's addresses


def says_unregistered(message: str) -> bool:
    """The tracker said the torrent is gone, and nothing in that answer says it is down.

    rtorrent 0.16 joins what each of a tracker's addresses answered with " /// "
    (`Could not connect to server /// Failure reason "Unregistered torrent"`: the
    IPv6 address refused, the IPv4 one answered). One part saying so is the
    tracker's own answer, so the tracker is up: the refused address does not
    count against it.
    """
    return any(
        _UNREGISTERED.search(part) and not _DOWN.search(part) for part in message.split(_JOINED)
    )


def says_down(message: str) -> bool:
    """The message says the tracker is down or unreachable, and no part of it is
    an answer that the torrent is gone."""
    return bool(_DOWN.search(message)) and not says_unregistered(message)


def unregistered_column(
    messages: Sequence[str | None], trackers: Sequence[tuple[str, ...] | None]
) -> list[bool | None]:
    """`unregistered` for a whole snapshot: the message says so and none of the
    torrent's trackers is down (module doc). None where the message is unknown."""
    hits = [says_unregistered(m) if m else False for m in messages]
    loaded: Counter[str] = Counter()
    saying: Counter[str] = Counter()
    down: set[str] = set()
    for message, hosts, hit in zip(messages, trackers, hits, strict=True):
        for host in hosts or ():
            loaded[host] += 1
            saying[host] += hit
            if message and not hit and _DOWN.search(message):
                down.add(host)
    down |= {h for h, n in saying.items() if n >= GUARD_COUNT and n >= GUARD_SHARE * loaded[h]}
    return [
        None if message is None else hit and not any(h in down for h in hosts or ())
        for message, hosts, hit in zip(messages, trackers, hits, strict=True)
    ]
