"""Temporal-consistency report: stylise real clips with each blend mode and measure them.

For every clip: the warping error (Lai et al.) of the output and of the input, their
ratio, and sharpness (Laplacian variance) with blending on and off, side by side.

    python tools/temporal_report.py --style starry_night CLIP [CLIP ...] [--frames 90]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from streamnst.demo import resolve_media
from streamnst.metrics import read_frames, warping_errors
from streamnst.render import render_file
from streamnst.stylizer import Stylizer, StylizerSettings
from streamnst.temporal import Blender, BlendSettings


def measure(clip: Path, stylizer: Stylizer, mode: str, strength: float, frames: int,
            workdir: Path) -> dict:
    blender = Blender(BlendSettings(mode=mode, strength=strength))
    out = workdir / f"{clip.stem}_{mode}.mp4"
    render_file(clip, out, lambda img: blender(img, stylizer.stylize(img)), overwrite=True,
                max_frames=frames)
    report = warping_errors(read_frames(out, frames), read_frames(clip, frames))
    return {"clip": clip.name, "blend": mode, "strength": strength, **report.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--strength", type=float, default=0.7)
    parser.add_argument("--keep", type=Path, default=None, help="keep the renders here")
    args = parser.parse_args()
    stylizer = Stylizer(args.style, StylizerSettings())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for clip in (resolve_media(c) for c in args.clips):
            for mode in ("off", "ema", "flow"):
                row = measure(clip, stylizer, mode, args.strength, args.frames, workdir)
                rows.append(row)
                print(f"{row['clip']:<32} {mode:<5} ratio {row['ratio']:7.2f}  "
                      f"ewarp {row['ewarp_stylized']:.5f} (input {row['ewarp_original']:.5f})"
                      f"  sharpness {row['sharpness_stylized']:8.1f}", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
