"""How streamnst holds up beside another busy program (issue 53): each case runs quiet
and then beside a busy process, interleaved round by round, and the ratios of the medians
are printed. Run it on a machine with nothing else running.

    python tools/load_bench.py                  # stylize and live, 3 rounds each
    python tools/load_bench.py --rounds 5 --busy stress-ng
    python tools/load_bench.py --cases recover --seconds 15   # live's scale comes back

The busy process: `python` (an ordinary unpinned `while True: pass`, the default) or
`stress-ng` (Debian's, one CPU worker). `stylize` renders FRAMES demo frames with the flow
blend (its time minus the start-up, from a 1-frame run in the same round); `live` plays the
demo to a null output for SECONDS and reports its frame rate and final scale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY = {"python": [sys.executable, "-c", "while True: pass"],
        "stress-ng": ["stress-ng", "--cpu", "1", "--timeout", "3600"]}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamnst", *args], capture_output=True,
                          text=True, timeout=1800)


def stylize_seconds(frames: int, folder: Path) -> float:
    """Seconds for `frames` demo frames, start-up (a 1-frame run) taken off."""
    def run(n: int) -> float:
        t0 = time.monotonic()
        r = _cli("stylize", "demo", str(folder / "out.mp4"), "--max-frames", str(n),
                 "--overwrite")
        if r.returncode:
            raise SystemExit(r.stderr)
        return time.monotonic() - t0
    return run(frames) - run(1)


def live_fps(seconds: float) -> tuple[float, float]:
    r = _cli("live", "--source", "demo", "--output", "null", "--duration", str(seconds),
             "--json")
    if r.returncode:
        raise SystemExit(r.stderr)
    summary = json.loads(r.stdout)
    return summary["fps"], summary["scale"]


def live_recovery(seconds: float, busy_cmd: list[str]) -> tuple[float, float, float | None]:
    """Live in this process for 3 x `seconds`: quiet, beside the busy process, quiet again.
    Returns the scale it settled at quiet, the lowest one busy, and the seconds from the
    end of the load until it was back at the quiet scale (None: not within the run)."""
    from streamnst.live.session import LiveConfig, build_session

    pipe = build_session(LiveConfig(source="demo", outputs=("null",)))
    pipe.start()
    timeline: list[tuple[float, float]] = []

    def watch(until: float) -> None:
        while time.monotonic() < until:
            timeline.append((time.monotonic(), pipe.stylizer.settings.scale))
            time.sleep(0.1)

    try:
        t0 = time.monotonic()
        watch(t0 + seconds)
        busy = subprocess.Popen(busy_cmd)
        try:
            watch(t0 + 2 * seconds)
        finally:
            busy.kill()
            busy.wait()
        freed = time.monotonic()
        low = min(scale for t, scale in timeline if t >= t0 + seconds)
        watch(freed + seconds)
    finally:
        pipe.stop()
    # the quiet scale: the highest held in the last half of the quiet phase (a machine at
    # the edge of two rungs moves between them)
    quiet = max(scale for t, scale in timeline if t0 + seconds / 2 <= t < t0 + seconds)
    back = next((t - freed for t, scale in timeline if t >= freed and scale >= quiet), None)
    moves = [(round(t - t0, 1), b) for (_, a), (t, b) in zip(timeline, timeline[1:], strict=False)
             if a != b]
    print(f"scale changes (s from the start: new scale): {moves}", flush=True)
    return quiet, low, back


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--busy", choices=sorted(BUSY), default="python")
    ap.add_argument("--cases", default="stylize,live")
    args = ap.parse_args()
    if not shutil.which(BUSY[args.busy][0]):
        raise SystemExit(f"{args.busy} is not installed")
    cases = args.cases.split(",")
    if "recover" in cases:  # its own phases: quiet, busy, quiet again
        cases.remove("recover")
        quiet, low, back = live_recovery(args.seconds, BUSY[args.busy])
        print(f"live scale: quiet {quiet:.2f}, beside the busy process down to {low:.2f}, "
              + (f"back to {quiet:.2f} {back:.1f} s after it ended" if back is not None
                 else "not back within the run"), flush=True)
        if not cases:
            return
    results: dict[str, dict[str, list[float]]] = {c: {"quiet": [], "busy": []} for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for load in ("quiet", "busy"):
                busy = subprocess.Popen(BUSY[args.busy]) if load == "busy" else None
                try:
                    time.sleep(1.0 if busy else 0.0)  # the scheduler sees it first
                    for case in cases:
                        if case == "stylize":
                            value = args.frames / stylize_seconds(args.frames, Path(tmp))
                        else:
                            value, scale = live_fps(args.seconds)
                            print(f"  live scale at the end: {scale:.2f}", flush=True)
                        results[case][load].append(value)
                        print(f"round {round_ + 1} {load:5s} {case}: {value:.2f} fps",
                              flush=True)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
    print(f"\nbeside one busy process ({args.busy}), medians of {args.rounds} rounds:")
    for case, runs in results.items():
        quiet, busy = statistics.median(runs["quiet"]), statistics.median(runs["busy"])
        print(f"  {case:8s} quiet {quiet:6.2f} fps  busy {busy:6.2f} fps  "
              f"ratio {busy / quiet:.2f}")


if __name__ == "__main__":
    main()
