"""What the live pipeline measures of itself: the running counters, and the summary the
status panel, the viewer page's state and `live --json` read."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from streamnst.core.threads import cores  # noqa: F401 (the live summary's count)


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class SinkProblem:
    spec: str
    message: str


@dataclass
class Stats:
    frames_out: int = 0
    frame_failures: int = 0
    started: float = field(default_factory=time.monotonic)
    first_out: float | None = None
    last_out: float | None = None
    process_latencies: list[float] = field(default_factory=list)
    infer_ms: list[float] = field(default_factory=list)
    cpu_at_first: float = 0.0  # process CPU seconds when the first frame came out


@dataclass(frozen=True)
class LiveStats:
    """What the live filter is doing, read by the status panel, the viewer page's state and
    `live --json` (whose keys are these field names)."""

    frames_out: int
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    infer_ms_median: float
    dropped: int  # frames the source captured that the filter never took
    captured: int
    source_fps: float
    frame_failures: int
    style: str
    mix_style: str | None  # the bank style mixed into `style`, and how much (0..1)
    mix: float
    keep_colors: bool  # the input's colours with the painting's light and strokes
    keep_face: float  # how much of a person's own face shows through (0..1)
    blend: str
    strength: float
    scale: float
    auto_scale: bool
    target_fps: float | None
    scale_changes: int
    max_side: int | None
    device: str
    dtype: str
    sinks: dict[str, dict[str, int]]  # name -> sent, dropped
    sink_problems: list[str]
    stages_ms: dict[str, dict[str, float]]
    rss_mb_start: float
    rss_mb_end: float
    # CPU the whole process spent per output frame since the first one (every thread:
    # capture, network, flow, encoders), and the cores it may use: 33 ms at 30 fps is
    # one core's worth, what a video call needs left for itself
    cpu_ms_per_frame: float
    cores: int

    def as_dict(self) -> dict:
        return asdict(self)


