"""What the content check costs per deleted torrent: ms and MiB read.

Before a file is unlinked, rtorrentd hashes pieces of it against the torrent's
metainfo (rtorrentd/deletion/content.py). This times the whole check for one
torrent as the executor runs it: read and parse the .torrent from a session
directory (`exact.read_metainfo`), choose the pieces, read and hash them. Torrents:

- 20 files: an album, 20 x 50 MiB in 1 MiB pieces (1 GiB);
- 20 files: a season pack, 20 x 700 MiB in 8 MiB pieces (14 GiB);
- 2,000 files: small ones, 2,000 x 8 KiB in 256 KiB pieces (16 MiB);
- 2,000 files: mixed, 2,000 x 100 KiB .. 5 MiB in 4 MiB pieces (about 5 GiB).

The payload is sparse files (all zeros, no blocks on disk), so reading costs what
a warm page cache costs: the time is SHA-1 and system calls. From a cold disk,
add "MiB read" at the disk's speed. "needs" is the smallest [safety]
verify_budget that lets the torrent be deleted (the default is 64 MiB).

    .venv/bin/python bench/content.py
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness.bencode import Bencodable, bencode  # noqa: E402

from rtorrentd.deletion.content import DEFAULT_VERIFY_BUDGET, MIB, check_content  # noqa: E402
from rtorrentd.deletion.exact import read_metainfo  # noqa: E402
from rtorrentd.deletion.pieces import choose_sample  # noqa: E402
from rtorrentd.protocol.metainfo import Bitfield  # noqa: E402

KIB = 1024
RUNS = 5


@dataclass(frozen=True)
class Case:
    label: str
    sizes: tuple[int, ...]
    piece_length: int


def _cases() -> list[Case]:
    mixed = random.Random(11)
    return [
        Case("20 files x 50 MiB, 1 MiB pieces", (50 * MIB,) * 20, MIB),
        Case("20 files x 700 MiB, 8 MiB pieces", (700 * MIB,) * 20, 8 * MIB),
        Case("2,000 files x 8 KiB, 256 KiB pieces", (8 * KIB,) * 2000, 256 * KIB),
        Case(
            "2,000 files, 100 KiB..5 MiB, 4 MiB pieces",
            tuple(mixed.randint(100 * KIB, 5 * MIB) for _ in range(2000)),
            4 * MIB,
        ),
    ]


def _torrent(case: Case, directory: Path) -> tuple[bytes, str]:
    """Sparse payload files under `directory` and the .torrent for them."""
    directory.mkdir(parents=True)
    total = sum(case.sizes)
    full, rest = divmod(total, case.piece_length)
    zero_piece = hashlib.sha1(bytes(case.piece_length)).digest()
    pieces = zero_piece * full + (hashlib.sha1(bytes(rest)).digest() if rest else b"")
    files: list[Bencodable] = []
    for number, size in enumerate(case.sizes):
        name = f"file{number:04}.bin"
        with open(directory / name, "wb") as out:
            out.truncate(size)
        files.append({"length": size, "path": [name]})
    info: dict[str, Bencodable] = {
        "name": "bench",
        "piece length": case.piece_length,
        "pieces": pieces,
        "files": files,
    }
    return bencode({"info": info}), hashlib.sha1(bencode(info)).hexdigest().upper()


def _measure(case: Case, base: Path) -> str:
    directory = base / f"case{len(os.listdir(base))}"
    data, info_hash = _torrent(case, directory)
    (directory / f"{info_hash}.torrent").write_bytes(data)
    paths = [directory / f"file{n:04}.bin" for n in range(len(case.sizes))]
    times, parse_times = [], []
    for _ in range(RUNS):
        began = time.perf_counter()
        meta = read_metainfo(str(directory), info_hash)
        parsed = time.perf_counter()
        everything = range(len(meta.files))
        verified = check_content(
            meta,
            everything,
            everything,
            Bitfield.full(meta.piece_count),
            budget=1 << 62,
            holds_no_data=lambda i: False,
            open_file=lambda i: os.open(paths[i], os.O_RDONLY | os.O_NOFOLLOW),
            name_of=lambda i: str(paths[i]),
        )
        times.append((time.perf_counter() - began) * 1000)
        parse_times.append((parsed - began) * 1000)
    sample = choose_sample(meta, everything, everything, Bitfield.full(meta.piece_count))
    needs = sample.size
    fits = "yes" if needs <= DEFAULT_VERIFY_BUDGET else "no"
    return (
        f"{case.label:<42} {sum(case.sizes) / MIB:>9.0f} {verified.pieces:>6} "
        f"{verified.bytes_read / MIB:>8.1f} {statistics.median(times):>8.1f} "
        f"{statistics.median(parse_times):>7.1f}   {fits} ({needs / MIB:.0f} MiB)"
    )


def main() -> None:
    print(f"content check per deleted torrent (median of {RUNS}; warm cache)")
    print(
        f"{'torrent':<42} {'MiB':>9} {'pieces':>6} {'MiB read':>8} {'ms':>8} "
        f"{'parse':>7}   within 64 MiB"
    )
    with tempfile.TemporaryDirectory(prefix="bench-content-") as base:
        for case in _cases():
            print(_measure(case, Path(base)))


if __name__ == "__main__":
    main()
