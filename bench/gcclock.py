"""How long the cyclic garbage collector ran, for the benchmarks that time a poll
(bench/poll.py, bench/scale.py's driver). A module of its own: the driver imports
nothing it would not measure."""

from __future__ import annotations

import gc
import time


class GcClock:
    """Wall-clock ms spent in the cyclic garbage collector, from `gc.callbacks`:
    how much of a poll's CPU is the collector walking objects."""

    def __init__(self) -> None:
        self.total = 0.0
        self.started = 0.0
        gc.callbacks.append(self.observe)

    def observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.total += (time.perf_counter() - self.started) * 1000
