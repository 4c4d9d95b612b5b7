"""Temporal-consistency report: stylise real clips and measure how much the output flickers.

For every style x clip x blend mode: the warping error (Lai et al.) of the output and of
the input, their ratio, and sharpness (Laplacian variance), side by side in one run. With
`--painting`, also the mean Gram distance to the painting (the training style loss), so
networks are compared at a known style strength.

    python tools/temporal_report.py CLIP [CLIP ...] [--style NAME_OR_PATH ...]
        [--blend off|ema|flow ...] [--frames 90] [--painting IMAGE]

Stabilised against unstabilised training of the same style, network alone:
    python tools/temporal_report.py demo one-by-one-person-detection.mp4 --blend off \
        --style checkpoints/starry_night.pth --style runs/starry_nostab.pth \
        --painting styles/vangogh_starry_night_1889.jpg
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import read_image
from streamnst.offline.metrics import read_frames, style_distances, warping_errors
from streamnst.offline.stylize_file import render_file


def measure(clip: Path, stylizer: Stylizer, mode: str, strength: float, frames: int,
            out: Path, painting=None, vgg=None) -> dict:
    blender = Blender(BlendSettings(mode=mode, strength=strength))
    render_file(clip, out, lambda img: stylizer.stylize(img, blender), overwrite=True,
                max_frames=frames)
    report = warping_errors(read_frames(out, frames), read_frames(clip, frames))
    row = {"style": stylizer.name, "clip": clip.name, "blend": mode, "strength": strength,
           **report.summary()}
    if vgg is not None:
        row.update(style_distances(read_frames(out, frames), read_frames(clip, frames),
                                   painting, vgg))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--style", action="append", help="name or .pth (repeatable)")
    parser.add_argument("--blend", action="append", choices=("off", "ema", "flow"),
                        help="blend modes to measure (repeatable; default all three)")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--strength", type=float, default=0.7)
    parser.add_argument("--painting", type=Path, default=None,
                        help="also report the Gram distance to this style image")
    parser.add_argument("--keep", type=Path, default=None, help="keep the renders here")
    args = parser.parse_args()
    painting = vgg = None
    if args.painting:
        from streamnst.nets.vgg import load_vgg
        painting, vgg = read_image(args.painting), load_vgg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for k, style in enumerate(args.style or ["starry_night"]):
            stylizer = Stylizer(style, StylizerSettings())
            for clip in (resolve_media(c) for c in args.clips):
                for mode in args.blend or ["off", "ema", "flow"]:
                    out = workdir / f"{k}_{stylizer.name}_{clip.stem}_{mode}.mp4"
                    row = measure(clip, stylizer, mode, args.strength, args.frames, out,
                                  painting, vgg)
                    rows.append(row)
                    extra = (f"  style dist {row['style_distance']:.3f}"
                             if "style_distance" in row else "")
                    print(f"{style:<28.28} {row['clip']:<32.32} {mode:<5} "
                          f"ratio {row['ratio']:6.2f}  ewarp {row['ewarp_stylized']:.5f} "
                          f"(input {row['ewarp_original']:.5f})  "
                          f"sharpness {row['sharpness_stylized']:7.1f}{extra}", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
