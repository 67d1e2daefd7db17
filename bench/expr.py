"""Time first-match rule evaluation: 10 realistic rules over 50,000 torrents.

Target: <= 100 ms per pass. Prints the best and median of several passes of
`Condition.select` over columns, as the engine does it, and how many torrents
each rule took (a sanity check that the rules do fire).

    .venv/bin/python bench/expr.py
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

from rtorrentd.conditions.parse import Columns, Select, parse_condition
from rtorrentd.vocabulary import name_kinds

TORRENTS = 50_000
PASSES = 7
DAY = 86400
NOW = 1_750_000_000
GIB = 1024**3

RULES = (
    'label in ["keep", "archive"]',
    "private and seeding_time < 14d",
    'message ~ "unregistered|not registered|torrent not found"',
    "complete and ratio >= 2.0 and seeding_time >= 7d",
    "complete and seeders > 10 and idle >= 30d",
    "complete and not private and age > 60d and up_rate == 0",
    "not complete and age > 30d and down_rate == 0",
    'trackers ~ "example\\.org" and ratio >= 1.0',
    "complete and size > 50GiB and uploaded / size < 0.1 and seeding_time > 30d",
    "complete and (seeders >= 5 or leechers == 0) and max(seeding_time, idle) > 21d",
)

Facts = Mapping[str, object]
_MESSAGES = ("", "", "", "", "", "", "Tracker: [Couldn't connect to server]")
_UNREGISTERED = 'Tracker: [Failure reason "Unregistered torrent"]'


def make_facts(rng: random.Random) -> dict[str, object]:
    """One torrent as the engine would present it: fields plus derived durations."""
    complete = rng.random() < 0.85
    size = int(rng.lognormvariate(21.5, 1.6))
    age = rng.randrange(DAY, 400 * DAY)
    seeding = rng.randrange(0, age) if complete else 0
    scraped = rng.random() < 0.9
    return {
        "hash": f"{rng.getrandbits(160):040X}",
        "name": f"Some.Release.{rng.randrange(10**6)}.1080p",
        "label": rng.choice(("", "", "tv", "movies", "music", "keep")),
        "complete": complete,
        "private": rng.random() < 0.4,
        "ratio": round(rng.expovariate(1.2), 3),
        "size": size,
        "uploaded": int(size * rng.expovariate(1.0)),
        "up_rate": rng.choice((0, 0, 0, rng.randrange(1, 10**6))),
        "down_rate": 0 if complete else rng.choice((0, rng.randrange(1, 10**7))),
        "added": NOW - age,
        "finished": NOW - seeding if complete else None,
        "message": _UNREGISTERED if rng.random() < 0.01 else rng.choice(_MESSAGES),
        "seeders": rng.randrange(0, 200) if scraped else None,
        "leechers": rng.randrange(0, 30) if scraped else None,
        "trackers": (rng.choice(("tracker.example.org", "tracker.other.net", "t.site.cc")),),
        "age": age,
        "seeding_time": seeding,
        "idle": rng.randrange(0, age),
        "message_age": rng.randrange(0, DAY),
    }


def first_match_columns(selects: Sequence[Select], columns: Columns, count: int) -> list[int]:
    """How many torrents each rule takes, the last slot for those no rule takes: each
    rule selects among the torrents no earlier rule took, as the engine does."""
    counts = []
    pending = list(range(count))
    for select in selects:
        taken = set(select(columns, pending))
        counts.append(len(taken))
        pending = [i for i in pending if i not in taken]
    return [*counts, len(pending)]


def timed(run: Callable[[], list[int]]) -> tuple[list[int], list[float], list[float]]:
    """The result and the wall and CPU times of PASSES runs, in ms."""
    wall, cpu = [], []
    for _ in range(PASSES):
        start, start_cpu = time.perf_counter(), time.process_time()
        counts = run()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return counts, wall, cpu


def main() -> None:
    """Build the data, time the passes both ways, print the result."""
    rng = random.Random(20240601)
    torrents = [make_facts(rng) for _ in range(TORRENTS)]
    columns = {name: [t[name] for t in torrents] for name in torrents[0]}
    names = name_kinds()
    conditions = [parse_condition(text, names) for text in RULES]
    selects = [c.select for c in conditions]
    counts, wall, cpu = timed(lambda: first_match_columns(selects, columns, len(torrents)))
    for text, count in zip((*RULES, "(no rule)"), counts, strict=True):
        print(f"{count:6d}  {text}")
    # CPU time as well as wall time: on a shared machine the wall clock includes
    # time spent waiting for a core.
    print(
        f"{len(RULES)} rules x {TORRENTS} torrents, first match by column (select): "
        f"best {min(wall):.1f} ms, median {statistics.median(wall):.1f} ms "
        f"(CPU best {min(cpu):.1f} ms)"
    )


if __name__ == "__main__":
    main()
