"""Per-stage time budget of the live path: where each frame's milliseconds go.

Stages: capture (decoding a file), resize, to_tensor, network, from_tensor, flow, blend,
and send:<sink> (encoding or handing over). Each component records into the StageTimes
it is given; the pipeline gives every component its own one, so `live --json` and
tools/live_bench.py can show the whole budget. Recent values only (bounded), thread-safe.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

KEEP = 2000  # recent values per stage


class StageTimes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, deque[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._values.setdefault(stage, deque(maxlen=KEEP)).append(ms)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - t0) * 1000.0)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"median_ms", "p95_ms", "count"}} over the recent values."""
        with self._lock:
            items = {k: sorted(v) for k, v in self._values.items() if v}
        return {k: {"median_ms": round(statistics.median(v), 2),
                    "p95_ms": round(v[min(len(v) - 1, round(0.95 * (len(v) - 1)))], 2),
                    "count": len(v)} for k, v in items.items()}
