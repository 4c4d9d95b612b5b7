"""End-to-end live figures: file source -> stylizer -> blend -> sink, for a fixed time.

Prints one JSON summary per configuration (fps, p50/p95 capture-to-sink latency, drops,
RSS at start and end, the per-stage budget), then a table of the per-stage medians side
by side (capture, resize, to_tensor, network, from_tensor, flow, blend, send). Run on a
quiet machine; the numbers are medians of one run.

    python tools/live_bench.py CLIP [--seconds 60] [--blend flow --blend off] [--sink null]
        [--scale auto --scale 1.0 --scale 0.5] [--threads 2 --threads 1] [--rss-every 60]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from streamnst.engine.stylizer import StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live import LIVE_MAX_SIDE
from streamnst.live.pipeline import Pipeline
from streamnst.live.session import LiveConfig, build_session
from streamnst.live.sources import VideoFileSource
from streamnst.live.stats import rss_mb
from streamnst.media.demo import resolve_media


def sample_rss(pipe: Pipeline, every: float) -> None:
    """Print RSS every `every` seconds while the pipeline runs (memory-growth check)."""
    t0 = time.monotonic()
    while not pipe.done.wait(every):
        print(json.dumps({"t_s": round(time.monotonic() - t0), "rss_mb": round(rss_mb(), 1),
                          "frames_out": pipe.stats.frames_out}), flush=True)


def run(clip: Path, style: str, blend: str, seconds: float, sink: str, scale: float | str,
        threads: int | None = None, rss_every: float | None = None,
        max_side: int = LIVE_MAX_SIDE) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        output = "null" if sink == "null" else str(Path(tmp) / "live.mp4")
        config = LiveConfig(str(clip), (output,), style,
                            None if scale == "auto" else float(scale), max_side,
                            stylizer=StylizerSettings(threads=threads),
                            blend=BlendSettings(mode=blend), duration=seconds)
        pipe = build_session(config)
        if rss_every:
            threading.Thread(target=sample_rss, args=(pipe, rss_every), daemon=True).start()
        summary = pipe.run().as_dict()
    summary.update(clip=clip.name, size=list(VideoFileSource(clip).size), sink=sink,
                   seconds=seconds, threads=threads or "default")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--blend", action="append", default=None)
    parser.add_argument("--sink", default="file", choices=["file", "null"])
    parser.add_argument("--scale", action="append", default=None,
                        help="working scales to compare: numbers or auto, as `live` "
                             "(default 1.0)")
    parser.add_argument("--threads", type=int, action="append", default=None,
                        help="torch threads to compare (default: torch's choice)")
    parser.add_argument("--max-side", type=int, default=LIVE_MAX_SIDE,
                        help=f"working-size cap, as `live` (default {LIVE_MAX_SIDE}; 0 = none)")
    parser.add_argument("--rss-every", type=float, default=None,
                        help="also print RSS every this many seconds during each run")
    args = parser.parse_args()
    keep = ("clip", "size", "blend", "sink", "threads", "scale", "auto_scale", "scale_changes",
            "max_side", "frames_out", "fps",
            "latency_p50_ms", "latency_p95_ms", "infer_ms_median", "dropped", "captured",
            "rss_mb_start", "rss_mb_end", "dtype", "stages_ms")
    budgets = []
    for threads in args.threads or [None]:
        for scale in args.scale or ["1.0"]:
            for blend in args.blend or ["flow", "off"]:
                s = run(resolve_media(args.clip), args.style, blend, args.seconds, args.sink,
                        scale, threads, args.rss_every, args.max_side)
                print(json.dumps({k: s[k] for k in keep}), flush=True)
                budgets.append((f"{blend} s={s['scale']} t={s['threads']}", s))
    print(stage_table(budgets))


ORDER = ("capture", "resize", "to_tensor", "network", "from_tensor", "flow", "blend")


def stage_table(budgets: list[tuple[str, dict]]) -> str:
    """Median ms per stage (rows) for each configuration (columns), plus the fps reached."""
    stages = [k for k in ORDER if any(k in b["stages_ms"] for _, b in budgets)]
    stages += sorted({k for _, b in budgets for k in b["stages_ms"]} - set(ORDER))
    width = max([len(name) for name, _ in budgets] + [10])
    lines = ["median ms per frame".ljust(16) + "".join(n.rjust(width + 2) for n, _ in budgets)]
    for stage in stages:
        cells = [b["stages_ms"].get(stage, {}).get("median_ms") for _, b in budgets]
        lines.append(stage.ljust(16) + "".join(
            ("-" if c is None else f"{c:.1f}").rjust(width + 2) for c in cells))
    lines.append("fps".ljust(16) + "".join(f"{b['fps']:.1f}".rjust(width + 2)
                                           for _, b in budgets))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
