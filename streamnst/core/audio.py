"""The source's sound, for the outputs that carry it (RTMP, WHIP).

The live filter paints pictures; its sound goes around it. A source that has sound (a
video file) publishes it to an `AudioFeed` in chunks stamped with the monotonic time they
play at, the clock every `Frame.timestamp` uses. Each output takes a `SoundQueue` of its
own and reads it by capture time: the samples that were playing when a frame was captured
go out with that frame, so the sound is delayed by the filter's latency exactly as the
picture is, and stays in sync. A gap (no chunk for that time) reads as silence; the queue
never grows past `SoundQueue.HOLD_S`.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

RATE = 48000  # samples per second per channel: what Opus takes and AAC ingests prefer
CHANNELS = 2
LAYOUT = "stereo" if CHANNELS == 2 else "mono"  # PyAV's name for it


def sample_at(timestamp: float) -> int:
    """The index on the shared sample clock of monotonic time `timestamp`."""
    return round(timestamp * RATE)


class SoundQueue:
    """One output's share of the feed: chunks placed on the sample clock."""

    HOLD_S = 5.0  # chunks older than this behind the newest are let go

    def __init__(self) -> None:
        self._chunks: deque[tuple[int, np.ndarray]] = deque()
        self._lock = threading.Lock()

    def put(self, start: int, samples: np.ndarray) -> None:
        with self._lock:
            self._chunks.append((start, samples))
            while self._chunks and self._chunks[0][0] < start - self.HOLD_S * RATE:
                self._chunks.popleft()

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples `start` to `start + count` of the sample clock, (CHANNELS, count)
        float32 in [-1, 1]; silence where no chunk covers them. Earlier ones are let go."""
        out = np.zeros((CHANNELS, count), np.float32)
        end = start + count
        with self._lock:
            while self._chunks and self._chunks[0][0] + self._chunks[0][1].shape[1] <= start:
                self._chunks.popleft()  # wholly in the past
            for first, samples in self._chunks:
                lo, hi = max(first, start), min(first + samples.shape[1], end)
                if lo < hi:
                    out[:, lo - start:hi - start] = samples[:, lo - first:hi - first]
        return out


class AudioFeed:
    """Fan a source's sound out to every output's queue."""

    def __init__(self) -> None:
        self._queues: list[SoundQueue] = []
        self._lock = threading.Lock()

    def subscribe(self) -> SoundQueue:
        queue = SoundQueue()
        with self._lock:
            self._queues.append(queue)
        return queue

    def publish(self, samples: np.ndarray, timestamp: float) -> None:
        """`samples`: (CHANNELS, n) float32 at RATE that start playing at `timestamp`."""
        start = sample_at(timestamp)
        with self._lock:
            queues = list(self._queues)
        for queue in queues:
            queue.put(start, samples)
