"""Adaptive working scale: keep the live filter at the source's frame rate on slow machines.

The network's cost grows with the pixels it works on (the scale squared), so when the
measured frame time stays over budget the scale steps down a fixed ladder, and when the next
step up is predicted to fit with headroom it steps back up. Every decision uses the median of
a whole window measured at the current scale; the first frames after a change are skipped (a
new shape runs slower while kernels warm up), so a single slow frame never changes the
picture. The up-prediction scales the whole frame time, fixed costs included, so it
overestimates and a step up is not undone by the next window.

A scale is kept while frames still come out at `tolerance` of the target rate (27 of 30 fps
by default, the rate the live targets ask of full size): giving up a tenth of the
resolution to win back the last few percent of frames is the worse trade for a viewer.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from streamnst.core.errors import InputError

# 1.0 down to 0.5 of the working size: below half, strokes grow coarser than the style
LADDER = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


@dataclass
class AutoScale:
    """Choose a scale from `ladder` so frames take at most 1/target_fps."""

    target_fps: float
    ladder: tuple[float, ...] = LADDER
    window: int = 15
    warmup: int = 3
    headroom: float = 0.85  # step up only if predicted to use at most this much of the budget
    tolerance: float = 0.9  # step down only below this fraction of the target rate
    index: int = 0
    changes: int = 0
    #: why the scale last changed, for the status line ("" before any change)
    reason: str = ""
    _samples: list[float] = field(default_factory=list, repr=False)
    _skip: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if not self.target_fps > 0:
            raise InputError(f"target fps must be positive, got {self.target_fps}")
        if list(self.ladder) != sorted(self.ladder, reverse=True) or not self.ladder:
            raise InputError("the scale ladder must be a non-empty descending list")
        if not 0.5 <= self.tolerance <= 1.0:
            raise InputError(f"tolerance must be between 0.5 and 1, got {self.tolerance}")
        self._skip = self.warmup

    @property
    def scale(self) -> float:
        return self.ladder[self.index]

    @property
    def budget_ms(self) -> float:
        return 1000.0 / self.target_fps

    def observe(self, frame_ms: float) -> float | None:
        """Record one frame's stylise+blend time; returns the new scale when it changes."""
        if self._skip:
            self._skip -= 1
            return None
        self._samples.append(frame_ms)
        if len(self._samples) < self.window:
            return None
        median = statistics.median(self._samples)
        self._samples.clear()
        index = self._decide(median)
        if index == self.index:
            return None
        way = "down" if index > self.index else "up"
        self.index, self._skip = index, self.warmup
        self.changes += 1
        self.reason = (f"{way}: frames took {median:.0f} ms against {self.budget_ms:.0f} ms "
                       f"for {self.target_fps:g} fps")
        return self.scale

    def _decide(self, median_ms: float) -> int:
        cur = self.scale

        def predicted(s: float) -> float:
            return median_ms * (s / cur) ** 2

        if median_ms > self.budget_ms / self.tolerance:
            # jump straight to the largest scale predicted to fit the whole budget (else the
            # smallest): aiming at the tolerated rate would step down again at the next bump
            for i in range(self.index + 1, len(self.ladder)):
                if predicted(self.ladder[i]) <= self.budget_ms:
                    return i
            return len(self.ladder) - 1
        if self.index > 0 and predicted(self.ladder[self.index - 1]) <= \
                self.headroom * self.budget_ms:
            return self.index - 1
        return self.index
