"""Broadcast against our own viewer server, side by side in one run: the filter's frame rate
with one RTMP publish to nginx and N FFmpeg clients pulling from it, against M aiortc
viewers of our own WebRTC server; and the added latency, camera to puller and camera to
our own viewer. With --whip, a third run publishes over WHIP to Eyevinn's WHIP endpoint
(tests/whip_server), which relays to the same nginx for the pullers; that relay decodes
and re-encodes on this machine too, so its CPU is the filter's loss here, not in use.

    python tools/broadcast_bench.py [--pullers 16] [--viewers 4] [--seconds 20] [--scale 1]
                                    [--whip]

Needs nginx-light and libnginx-mod-rtmp (and, for --whip, `npm ci --prefix
tests/whip_server`). The pullers copy the stream without decoding
(`ffmpeg -c copy -f null`): a real viewer decodes on its own machine; the aiortc viewers
decode in this process, as tools/soak.py's do (aiortc always decodes).

Latency: a source that flips between black and white every 2 s, painted with the blend
off; a client's latency is the time from a flip to the first frame it decodes that has
crossed half way (medians over the flips). The puller for it is a PyAV client, decoding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import nginx_rtmp  # noqa: E402
import whip_endpoint  # noqa: E402
from webrtc_client import Viewer  # noqa: E402

from streamnst.engine.temporal import BlendSettings  # noqa: E402
from streamnst.live.outputs import ServerOptions  # noqa: E402
from streamnst.live.session import LiveConfig, SessionHooks, build_session  # noqa: E402
from streamnst.live.sources import Source, register_source  # noqa: E402

FLIP_S = 2.0


class Flash(Source):
    """640x360 frames at 30 fps, black and white in turn every FLIP_S; `flips` holds when
    each turn was captured."""

    name = "flash"

    def __init__(self) -> None:
        super().__init__()
        self.fps, self.size = 30.0, (640, 360)
        self.flips: list[float] = []

    def _run(self) -> None:
        frames = [np.full((360, 640, 3), v, np.uint8) for v in (16, 240)]
        start = time.monotonic()
        while not self.stop_event.is_set():
            turn = int((time.monotonic() - start) / FLIP_S)
            if turn >= len(self.flips):
                self.flips.append(time.monotonic())
            self.emit(frames[turn % 2])
            time.sleep(1 / self.fps)


SOURCES: list[Flash] = []


def _flash(args: str, context) -> Source:
    SOURCES.append(Flash())
    return SOURCES[-1]


register_source("flash", _flash)  # the registry is open: a source of the tool's own


def latencies(arrivals: list[tuple[float, float]], flips: list[float]) -> list[float]:
    """For each flip after the first: the first arrival whose brightness crossed half way
    between the darkest and brightest frames seen (the style paints black and white as
    its own dark and light)."""
    if not arrivals:
        return []
    values = [luma for _, luma in arrivals]
    middle = (min(values) + max(values)) / 2
    out = []
    for i, flip in enumerate(flips[1:], start=1):
        bright = i % 2 == 1
        before = [luma for t, luma in arrivals if t <= flip]
        if not before or (before[-1] > middle) == bright:
            continue  # the client had not shown the previous state yet: no crossing to time
        for t, luma in arrivals:
            if t > flip and (luma > middle) == bright:
                out.append((t - flip) * 1000)
                break
    return out


def rtmp_run(args, folder: Path, source: str, blend: str,
             whip: bool = False) -> tuple[dict, list[float]]:
    """One publish, to nginx over RTMP or (`whip`) over WHIP through the relay."""
    server = nginx_rtmp.Nginx(folder)
    server.start()
    url = server.url("bench")
    relay = whip_endpoint.WhipServer("bench-token", folder / "whip.log") if whip else None
    if relay is not None:
        relay.start()
    output = relay.url(url, "640x360") if relay is not None else url
    pipe = build_session(LiveConfig(source, (output, "null"), scale=args.scale,
                                    blend=BlendSettings(mode=blend),
                                    whip_token="bench-token"))
    pipe.start()
    pullers = [subprocess.Popen(["ffmpeg", "-loglevel", "quiet", "-i", f"{url} live=1", "-c",
                                 "copy", "-f", "null", "-"]) for _ in range(args.pullers)]
    seen: list[tuple[float, float]] = []
    stop = threading.Event()

    def pull() -> None:
        with av.open(f"{url} live=1", timeout=20) as c:
            for frame in c.decode(video=0):
                seen.append((time.monotonic(), float(frame.to_ndarray(format="gray").mean())))
                if stop.is_set():
                    return

    reader = threading.Thread(target=pull, daemon=True)
    reader.start()
    time.sleep(args.seconds)
    stop.set()
    summary = pipe.stop()
    alive = sum(p.poll() is None for p in pullers)
    for p in pullers:
        p.kill()
    if relay is not None:
        relay.kill()
    server.kill()
    flips = SOURCES[-1].flips if source == "flash" else []
    return {"fps": round(summary.fps, 1), "scale": summary.scale, "pullers_alive": alive,
            "cpu_ms_per_frame": round(summary.cpu_ms_per_frame, 1)}, latencies(seen, flips)


def webrtc_run(args, source: str, blend: str) -> tuple[dict, list[float]]:
    urls: list[str] = []
    config = LiveConfig(source, ("webrtc", "null"), scale=args.scale,
                        blend=BlendSettings(mode=blend),
                        server=ServerOptions(port=0, max_viewers=max(4, args.viewers)))
    pipe = build_session(config, SessionHooks(listening=urls.append))
    pipe.start()
    seen: list[tuple[float, float]] = []

    async def watch() -> None:
        viewers = [Viewer(urls[0].rstrip("/")) for _ in range(args.viewers)]
        for v in viewers:
            await v.connect()
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            await asyncio.sleep(0.05)
            first = viewers[0]  # its frames, with when they arrived (monotonic = loop time)
            seen.extend((t, float(f.mean())) for f, t in zip(first.frames, first.arrivals,
                                                               strict=True))
            for v in viewers:
                v.frames.clear()
                v.arrivals.clear()
        for v in viewers:
            await v.close()

    asyncio.run(watch())
    summary = pipe.stop()
    flips = SOURCES[-1].flips if source == "flash" else []
    return {"fps": round(summary.fps, 1), "scale": summary.scale,
            "cpu_ms_per_frame": round(summary.cpu_ms_per_frame, 1)}, latencies(seen, flips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pullers", type=int, default=16)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--scale", type=float, default=None,
                        help="a fixed working scale (default: live's, adapting)")
    parser.add_argument("--whip", action="store_true",
                        help="also publish over WHIP, relayed to nginx (tests/whip_server)")
    args = parser.parse_args()
    if not nginx_rtmp.available():
        sys.exit("needs nginx-light and libnginx-mod-rtmp")
    if args.whip and not whip_endpoint.available():
        sys.exit("--whip needs node and `npm ci --prefix tests/whip_server`")
    with tempfile.TemporaryDirectory() as tmp:
        rtmp, _ = rtmp_run(args, Path(tmp), "demo", "flow")
        own, _ = webrtc_run(args, "demo", "flow")
        runs = {"rtmp": {**rtmp, "pullers": args.pullers},
                "webrtc": {**own, "viewers": args.viewers}}
        if args.whip:
            whip, _ = rtmp_run(args, Path(tmp), "demo", "flow", whip=True)
            runs["whip_relayed"] = {**whip, "pullers": args.pullers}
        print(json.dumps(runs), flush=True)
        quiet = argparse.Namespace(pullers=0, viewers=1, seconds=args.seconds,
                                   scale=args.scale)
        lat = {"camera_to_rtmp_puller": rtmp_run(quiet, Path(tmp), "flash", "off")[1],
               "camera_to_own_viewer": webrtc_run(quiet, "flash", "off")[1]}
        if args.whip:
            lat["camera_to_puller_through_whip_relay"] = rtmp_run(
                quiet, Path(tmp), "flash", "off", whip=True)[1]
    print(json.dumps({"latency_ms_median": {
        name: round(statistics.median(v), 0) if v else None for name, v in lat.items()},
        "flips": [len(v) for v in lat.values()]}), flush=True)


if __name__ == "__main__":
    main()
