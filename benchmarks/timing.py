"""What every benchmark here measures with: the best of n runs, which is the least disturbed by a noisy machine."""

from __future__ import annotations

import time
from typing import Callable


def best_of(n: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)
