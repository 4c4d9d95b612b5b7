"""Soak test of the live filter: N minutes with WebRTC viewers, a style switch every few
seconds and blend and strength changes; RSS, threads and open files at start and end.

    python tools/soak.py [--minutes 30] [--viewers 2] [--switch-every 10] [--source demo]

Prints one JSON report and exits 1 if the bar is missed: RSS grows by 30 MB or more, or
threads or open files end above where they started (measured after a warm-up that goes
through every style and blend mode once, so first-use allocations do not count).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from webrtc_client import Viewer  # noqa: E402

from streamnst.core.devices import limit_malloc_arenas  # noqa: E402
from streamnst.live.control import LiveControl  # noqa: E402
from streamnst.live.outputs import ServerOptions  # noqa: E402
from streamnst.live.pipeline import Pipeline
from streamnst.live.session import LiveConfig, SessionHooks, build_session  # noqa: E402
from streamnst.live.stats import rss_mb  # noqa: E402
from streamnst.nets.checkpoint_io import available_styles  # noqa: E402

WARM_UP_S = 10.0


def resources() -> dict:
    return {"rss_mb": round(rss_mb(), 1), "threads": threading.active_count(),
            "fds": len(os.listdir("/proc/self/fd"))}


async def watch(url: str, viewers: int, stop: threading.Event) -> list[int]:
    """Keep `viewers` aiortc viewers connected until `stop`; frames each received."""
    clients = [Viewer(url) for _ in range(viewers)]
    for c in clients:
        await c.connect()
    counts = [0] * viewers
    while not stop.is_set():
        await asyncio.sleep(0.5)
        for i, c in enumerate(clients):  # Viewer keeps a bounded window of frames
            counts[i] += len(c.frames)
            c.frames.clear()
            c.arrivals.clear()
    for c in clients:
        await c.close()
    return counts


def drive(pipe: Pipeline, seconds: float, every: float, rss: list[float] | None = None) -> int:
    """Switch style every `every` seconds, and change blend and strength between; append
    RSS to `rss` after every switch."""
    control = LiveControl(pipe)
    styles = itertools.cycle(list(available_styles()) or [pipe.stylizer.name])
    blends = itertools.cycle(["ema", "off", "flow"])
    switches, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(every / 2, max(0.0, end - time.monotonic())))
        control.apply({"blend": next(blends), "strength": round(0.3 + 0.1 * (switches % 6), 2)})
        time.sleep(min(every / 2, max(0.0, end - time.monotonic())))
        control.apply({"style": next(styles)})
        switches += 1
        if rss is not None:
            rss.append(rss_mb())
    return switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--viewers", type=int, default=2)
    parser.add_argument("--switch-every", type=float, default=10.0)
    parser.add_argument("--source", default="demo")
    parser.add_argument("--style", default=None, help="first style (default: the default)")
    args = parser.parse_args()

    limit_malloc_arenas()  # as `streamnst live` does
    first = args.style or next(iter(available_styles()))
    urls: list[str] = []
    config = LiveConfig(args.source, ("webrtc", "null"), first, scale=1.0,
                        server=ServerOptions(port=0, max_viewers=max(4, args.viewers)))
    pipe = build_session(config, SessionHooks(listening=urls.append))
    pipe.start()
    stop = threading.Event()
    counts: list[int] = []
    watcher = threading.Thread(target=lambda: counts.extend(asyncio.run(
        watch(urls[0].rstrip("/"), args.viewers, stop))), daemon=True)
    watcher.start()
    # warm up through every style and blend once: first-use allocations are not leaks
    drive(pipe, max(WARM_UP_S, 2 * args.switch_every * len(available_styles())),
          args.switch_every)
    start = resources()
    frames_start = pipe.stats.frames_out
    samples: list[float] = []
    switches = drive(pipe, args.minutes * 60.0, args.switch_every, samples)
    time.sleep(1.0)  # let the last switch land, under the same load as at the start
    end = resources()
    stop.set()
    watcher.join(30)
    summary = pipe.stop()
    report = {"minutes": args.minutes, "viewers": args.viewers, "style_switches": switches,
              "frames_out": summary.frames_out - frames_start, "fps": round(summary.fps, 1),
              "frames_per_viewer": counts, "frame_failures": summary.frame_failures,
              "start": start, "end": end,
              "rss_samples_mb": [round(v) for v in samples]}
    # RSS moves by tens of MB with each style load and peer buffer: compare the medians of
    # the first and last quarters of the run, not two single readings
    quarter = max(1, len(samples) // 4)
    report["rss_growth_mb"] = round(statistics.median(samples[-quarter:])
                                    - statistics.median(samples[:quarter]), 1)
    report["pass"] = bool(report["rss_growth_mb"] < 30 and end["threads"] <= start["threads"]
                          and end["fds"] <= start["fds"] and all(counts))
    print(json.dumps(report), flush=True)
    sys.exit(0 if report["pass"] else 1)


if __name__ == "__main__":
    main()
