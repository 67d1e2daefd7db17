"""Time `decode_response` against `xmlrpc.client.loads` on 10,000-torrent replies, both layouts.

rtorrent has two XML backends, which lay a reply out differently: xmlrpc-c writes
CRLF after each value, tinyxml2 (the common docker images, FreeBSD) no whitespace
at all. The replies timed are real ones, recorded from rtorrent (see
../shared/recorded/README.md), one per layout and version:

- xmlrpc-c, rtorrent 0.9.8: 10,000 torrents x 15 fields (what the daemon asks);
- the same reply in tinyxml2's layout, made from it by removing the whitespace
  between tags (no 0.9.8 build has tinyxml2);
- xmlrpc-c and tinyxml2, rtorrent 0.16.17: the same 10,000 torrents x 28 fields,
  four of them `t.multicall=` tables.

Without that directory (or with `--synthetic`), a seeded made-up reply of the
same 15 fields is built in memory in both layouts instead, and the output says so.

Run: `.venv/bin/python bench/decode.py [--synthetic] [--runs N] [--general]`.
Each decoder runs N times, interleaved so that all see the same load on a shared
machine, and the best time counts. Times are CPU time (`time.process_time`):
decoding is single-threaded, and on a shared machine wall time also counts the
other processes. Exits 1 if the decoders disagree on a value.
Goal: `decode_response` >= 5x as fast as the stdlib on every reply. `--general`
also times the general decoder (`xml_decode.parse_response`), which every reply
that is not a list of rows takes, for reference.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtorrentd.protocol.xml_decode import parse_response
from rtorrentd.protocol.xmlrpc import decode_response

RECORDED = Path(__file__).resolve().parent.parent.parent / "shared" / "recorded"
REPLIES = (
    ("xmlrpc-c", "0.9.8, 15 fields", "xmlrpc-c-0.9.8-10k_d.multicall2.xml.gz"),
    ("xmlrpc-c", "0.16, 28 fields", "xmlrpc-c-0.16/10k_d.multicall2_full.xml.gz"),
    ("tinyxml2", "0.16, 28 fields", "tinyxml2-0.16/10k_d.multicall2_full.xml.gz"),
)
TORRENTS = 10_000
RUNS = 5
GOAL = 5.0
SEED = 20240501


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply body to time, and where it comes from."""

    layout: str
    what: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Timing:
    """Best times of one reply, in seconds."""

    ours: float
    stdlib: float
    general: float | None


# ---------------------------------------------------------------------------
# A made-up reply, for when the recorded ones are not at hand
# ---------------------------------------------------------------------------

WORDS = (
    "Ubuntu", "Debian", "Fedora", "Arch", "live", "server", "desktop", "amd64",
    "arm64", "netinst", "Big", "Buck", "Bunny", "Sintel", "Tears", "of", "Steel",
    "Elephants", "Dream", "Cosmos", "Laundromat", "1080p", "2160p", "x265", "FLAC",
    "Complete", "Collection", "Season", "S01", "E02", "Vol", "Bach", "Goldberg",
    "Variations", "Café", "Müller", "Ærø", "東京", "Жизнь",
)  # fmt: skip
# Some real names carry characters XML must escape; they take the slower path.
ODD_WORDS = ("Tom & Jerry", "Simon & Garfunkel", "<proper>")
LABELS = ("", "", "linux", "movies", "music", "books", "cross-seed", "tv")
MESSAGES = (
    "",
    "",
    "",
    "",
    'Tracker: [Failure reason "Unregistered torrent"]',
    "Tracker: [Couldn't connect to server]",
    "Tracker: [Timeout was reached]",
)


def escape(text: str) -> bytes:
    """Escape text the way rtorrent's backends do (only what XML requires)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.encode()


def string(text: str) -> bytes:
    """One string value line (xmlrpc-c's layout)."""
    return b"<value><string>" + escape(text) + b"</string></value>\r\n"


def i8(number: int) -> bytes:
    """One i8 value line."""
    return b"<value><i8>%d</i8></value>\r\n" % number


def array(lines: list[bytes]) -> bytes:
    """An array value spread over lines."""
    return b"<value><array><data>\r\n" + b"".join(lines) + b"</data></array></value>\r\n"


def torrent_row(rng: random.Random) -> bytes:
    """The 15 field values of one made-up torrent."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.03:
        words.insert(0, rng.choice(ODD_WORDS))
    name = ".".join(words)
    multi = rng.random() < 0.6
    directory = f"/srv/{rng.choice(LABELS) or 'dl'}"
    size = rng.randint(10**5, 8 * 10**10)
    done = size if rng.random() < 0.9 else rng.randint(0, size)
    up = rng.randint(0, 30 * size)
    trackers = [[rng.randint(0, 5000), rng.randint(0, 300)] for _ in range(rng.randint(1, 2))]
    fields = [
        string(f"{rng.getrandbits(160):040X}"),
        string(name),
        string(f"{directory}/{name}" if multi else directory),
        string(f"{directory}/{name}" if rng.random() < 0.7 else ""),
        i8(size),
        i8(done),
        i8(up),
        i8(up * 1000 // size),
        i8(rng.randint(0, 1)),
        i8(int(done == size)),
        string(rng.choice(LABELS)),
        string(str(rng.randint(1_500_000_000, 1_800_000_000)) if rng.random() < 0.5 else ""),
        string(rng.choice(MESSAGES)),
        i8(rng.randint(1_500_000_000, 1_800_000_000) if done == size else 0),
        array([array([i8(n) for n in tracker]) for tracker in trackers]),
    ]
    return array(fields)


def build_reply(torrents: int, seed: int = SEED) -> bytes:
    """A d.multicall2 reply for `torrents` made-up torrents, in xmlrpc-c's layout."""
    rng = random.Random(seed)
    rows = b"".join(torrent_row(rng) for _ in range(torrents))
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n'
        b"<param><value><array><data>\r\n" + rows + b"</data></array></value></param>\r\n"
        b"</params>\r\n</methodResponse>\r\n"
    )


def compact(body: bytes) -> bytes:
    """The same reply in tinyxml2's layout: no whitespace between tags, its own
    declaration. (Exact for `build_reply`'s bodies: no text there is only CRLF.)"""
    body = body.replace(b'<?xml version="1.0" encoding="UTF-8"?>', b'<?xml version="1.0"?>')
    return body.replace(b">\r\n<", b"><").replace(b"<data></data>", b"<data/>").rstrip()


def replies(synthetic: bool) -> list[Reply]:
    """The recorded replies (and one re-laid out), or the made-up one in both layouts."""
    if not synthetic and all((RECORDED / name).is_file() for *_, name in REPLIES):
        found = [
            Reply(
                layout,
                f"recorded, rtorrent {what}",
                gzip.decompress((RECORDED / name).read_bytes()),
            )
            for layout, what, name in REPLIES
        ]
        relaid = Reply("tinyxml2", "the 0.9.8 reply, whitespace removed", compact(found[0].body))
        return [found[0], relaid, *found[1:]]
    body = build_reply(TORRENTS)
    what = "synthetic (no recorded replies), 15 fields"
    return [Reply("xmlrpc-c", what, body), Reply("tinyxml2", what, compact(body))]


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def stdlib_decode(body: bytes) -> object:
    """The stdlib's answer for the single response value."""
    params, _method = xmlrpc.client.loads(body)
    return params[0]


def timed(decode: Callable[[bytes], object], body: bytes) -> tuple[float, object]:
    """CPU time of one decode, in seconds, and its result."""
    start = time.process_time()
    result = decode(body)
    return time.process_time() - start, result


def measure(reply: Reply, runs: int, general: bool) -> tuple[Timing, bool]:
    """Best times of the decoders on one reply, and whether they agree."""
    ours_s = stdlib_s = general_s = float("inf")
    values: list[object] = []
    for _ in range(runs):
        seconds, ours = timed(decode_response, reply.body)
        ours_s = min(ours_s, seconds)
        seconds, theirs = timed(stdlib_decode, reply.body)
        stdlib_s = min(stdlib_s, seconds)
        values = [ours, theirs]
    if general:
        general_s, value = timed(parse_response, reply.body)  # seconds each: once
        values.append(value)
    agree = all(value == values[0] for value in values)
    return Timing(ours_s, stdlib_s, general_s if general else None), agree


def main() -> int:
    """Decode each reply every way, compare, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--synthetic", action="store_true", help="made-up replies only")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"best of N (default {RUNS})")
    parser.add_argument("--general", action="store_true", help="time the general decoder too")
    args = parser.parse_args()
    failed = False
    print(
        f"decode_response vs xmlrpc.client.loads, CPU time, best of {args.runs}; goal >= {GOAL:g}x"
    )
    for reply in replies(args.synthetic):
        timing, agree = measure(reply, args.runs, args.general)
        ratio = timing.stdlib / timing.ours
        verdict = "ok" if ratio >= GOAL else "UNDER GOAL"
        print(f"{reply.layout:9} {reply.what}: {len(reply.body):,} bytes")
        print(
            f"  stdlib {timing.stdlib * 1000:7.1f} ms   ours {timing.ours * 1000:7.1f} ms   "
            f"{ratio:5.1f}x ({verdict})"
        )
        if timing.general is not None:
            print(f"  general decoder alone {timing.general * 1000:7.1f} ms (one run)")
        if not agree:
            print("  FAIL: the decoders disagree", file=sys.stderr)
            failed = True
    if not failed:
        print("outputs equal")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
