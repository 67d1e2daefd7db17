"""Time `rpc.decode_response` against `xmlrpc.client.loads` on a large d.multicall2 reply.

The reply is built in memory (seeded, so every run decodes the same bytes) in the
exact layout rtorrent 0.9.8 writes: CRLF line ends, one `<value>` per line, `<i8>`
integers, and a nested `t.multicall` array per torrent, as in
tests/data/multicall2_reply.scgi. Nothing is written to disk.

Run: `.venv/bin/python bench/decode.py [torrents]`. Exits 1 if the decoders
disagree on the value. Goal: `decode_response` <= 1/5 of the stdlib's time. Such a
reply takes the row fast path (`rpc_rows`); the general decoder (`rpc_decode`),
which any other reply takes, is timed too for reference.
"""

from __future__ import annotations

import random
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtorrentd.protocol.xml_decode import parse_response
from rtorrentd.protocol.xmlrpc import decode_response

TORRENTS = 10_000
RUNS = 5
GOAL = 0.2
SEED = 20240501

# The 15 fields the daemon asks for, in order; only their count and types matter here.
FIELDS = (
    "d.hash=",
    "d.name=",
    "d.directory=",
    "d.base_path=",
    "d.size_bytes=",
    "d.bytes_done=",
    "d.up.total=",
    "d.ratio=",
    "d.state=",
    "d.complete=",
    "d.custom1=",
    "d.custom=addtime",
    "d.message=",
    "d.timestamp.finished=",
    "t.multicall=,t.scrape_complete=,t.scrape_incomplete=",
)

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
    """Escape text the way xmlrpc-c does (only the characters XML requires)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.encode()


def string(text: str) -> bytes:
    """One string value line."""
    return b"<value><string>" + escape(text) + b"</string></value>\r\n"


def i8(number: int) -> bytes:
    """One i8 value line."""
    return b"<value><i8>%d</i8></value>\r\n" % number


def array(lines: list[bytes]) -> bytes:
    """An array value spread over lines, as rtorrent writes it."""
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
    assert len(fields) == len(FIELDS)
    return array(fields)


def build_reply(torrents: int, seed: int = SEED) -> bytes:
    """The XML body of a d.multicall2 reply for `torrents` made-up torrents."""
    rng = random.Random(seed)
    rows = b"".join(torrent_row(rng) for _ in range(torrents))
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<methodResponse>\r\n<params>\r\n'
        b"<param><value><array><data>\r\n" + rows + b"</data></array></value></param>\r\n"
        b"</params>\r\n</methodResponse>\r\n"
    )


def stdlib_decode(body: bytes) -> object:
    """The stdlib's answer for the single response value."""
    params, _method = xmlrpc.client.loads(body)
    return params[0]


def timed(decode: Callable[[bytes], object], body: bytes) -> tuple[float, object]:
    """Wall time of one decode, in seconds, and its result."""
    start = time.perf_counter()
    result = decode(body)
    return time.perf_counter() - start, result


def main() -> int:
    """Build, decode both ways, compare, print the numbers."""
    torrents = int(sys.argv[1]) if len(sys.argv) > 1 else TORRENTS
    body = build_reply(torrents)
    ours_s = stdlib_s = general_s = float("inf")
    ours: object = None
    theirs: object = None
    general: object = None
    # Interleaved, so that all see the same load on a shared machine; best of RUNS.
    for _ in range(RUNS):
        seconds, ours = timed(decode_response, body)
        ours_s = min(ours_s, seconds)
        seconds, theirs = timed(stdlib_decode, body)
        stdlib_s = min(stdlib_s, seconds)
        seconds, general = timed(parse_response, body)
        general_s = min(general_s, seconds)
    ratio = ours_s / stdlib_s
    print(f"reply: {torrents} torrents x {len(FIELDS)} fields, {len(body):,} bytes")
    print(f"xmlrpc.client.loads: {stdlib_s * 1000:8.1f} ms (best of {RUNS})")
    print(f"rpc.decode_response: {ours_s * 1000:8.1f} ms (best of {RUNS})")
    print(
        f"ratio ours/stdlib:   {ratio:8.3f} (goal <= {GOAL}: {'ok' if ratio <= GOAL else 'OVER'})"
    )
    print(f"general decoder:     {general_s * 1000:8.1f} ms (rpc_decode.parse_response)")
    if not ours == theirs == general:
        print("FAIL: the decoders disagree", file=sys.stderr)
        return 1
    print("outputs equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
