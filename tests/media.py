"""Test media made by the tests themselves: videos with audio, images, styles."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A frame with structure and motion: a gradient background and a moving square."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)),
                    np.full_like(x, 128)], axis=-1).astype(np.uint8)
    s = max(4, min(width, height) // 4)
    x0 = (index * 3) % max(1, width - s)
    img[height // 3:height // 3 + s, x0:x0 + s] = (250, 40, 40)
    return img


def make_video(path: Path, frames: int = 12, width: int = 64, height: int = 48,
               fps: int = 15, audio: bool = True, codec: str = "libx264") -> Path:
    """Write a small video (H.264 + AAC sine by default) with PyAV."""
    container = av.open(str(path), mode="w")
    v = container.add_stream(codec, rate=fps)
    v.width, v.height, v.pix_fmt = width, height, "yuv420p"
    a = None
    if audio:
        a = container.add_stream("aac", rate=44100)
        a.layout = "mono"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        for p in v.encode(frame):
            container.mux(p)
    for p in v.encode(None):
        container.mux(p)
    if a is not None:
        n = int(44100 * frames / fps)
        t = np.arange(n) / 44100
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for start in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(samples[:, start:start + 1024], format="fltp",
                                            layout="mono")
            af.sample_rate = 44100
            af.pts = start
            for p in a.encode(af):
                container.mux(p)
        for p in a.encode(None):
            container.mux(p)
    container.close()
    return path


def probe(path: Path) -> dict:
    """Decode a file fully: frame count, fps, size, audio codec and duration."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        audio = c.streams.audio[0] if c.streams.audio else None
        info = {"fps": v.average_rate, "width": v.codec_context.width,
                "height": v.codec_context.height, "video_codec": v.codec_context.name,
                "audio_codec": audio.codec_context.name if audio else None}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    if audio is not None:
        with av.open(str(path)) as c:
            samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
            info["audio_seconds"] = samples / c.streams.audio[0].codec_context.sample_rate
    info["frames"] = len(frames)
    info["images"] = frames
    return info
