"""`train --quick` on paintings no style was trained on: the time it takes, the look numbers
of docs/gallery.md (tools/look_report.py) against the painting itself, the warping-error
ratio with the live blend on the demo clip and on a webcam-like clip no training used
(a person signing to the camera), and a contact sheet to judge by eye.

    python tools/quick_report.py PAINTING [PAINTING ...] [--minutes 4] [--reference starry_night]
        [--sheet docs/quick.jpg] [--work DIR]

Each painting is trained by the real command (`streamnst train P --quick --out ...`, timed
from outside, start-up included) into --work; a style already there is reused with
--reuse. --reference adds a full gallery style's row for comparison.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from look_report import HELD_OUT, VIDEO, WORK_SIDE, held_out_frame, look, row_text  # tools/

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.media.demo import demo_clip
from streamnst.media.imageio import contact_sheet, read_image, resize_max_side, write_image
from streamnst.nets.checkpoint_io import load_style
from streamnst.offline.metrics import read_frames, warping_errors

WARP_FRAMES = 60
#: the webcam-like clip the warp is measured on as well: one of the ASL clips that
#: tools/bank_photos.py keeps out of training
WEBCAM_LIKE = f"{VIDEO}/asl_gestures/yes.mkv"


def train(painting: Path, out: Path, minutes: float) -> float:
    """Run `train --quick`; its wall time in seconds."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "streamnst", "train", str(painting), "--quick",
                    "--minutes", str(minutes), "--out", str(out)], check=True)
    return time.monotonic() - t0


def warp_ratio(stylizer: Stylizer, clip) -> float:
    """Warping-error ratio of the live chain (flow blend) over a clip's first frames."""
    frames = [resize_max_side(f, WORK_SIDE) for f in read_frames(clip, WARP_FRAMES)]
    blend = Blender(BlendSettings(mode="flow"))
    return warping_errors([stylizer.stylize(f, blend) for f in frames], frames).ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paintings", nargs="+", type=Path)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--reference", action="append", default=[],
                    help="a full style to show beside them (name or .pth)")
    ap.add_argument("--work", type=Path, default=Path("quick-styles"))
    ap.add_argument("--reuse", action="store_true", help="keep styles already in --work")
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--palette", type=float, help="instead of a quick style's own amount")
    ap.add_argument("--shading", type=float, help="instead of a quick style's own amount")
    ap.add_argument("--keep-face", type=float, help="instead of a quick style's own amount")
    args = ap.parse_args()
    frames = [held_out_frame(s) for s in HELD_OUT]
    shown = [0, 2, 5, 7, 8]  # a close-up, an upper body, the film, a dance, the garden
    rows = [[np.full_like(frames[0], 255)] + [frames[i] for i in shown]]
    captions = [["painting"] + ["input"] * len(shown)]
    print("| style | wall time | colour vs input | texture | structure | warp (demo) "
          "| warp (webcam-like) |")
    print("|---|---|---|---|---|---|---|")
    jobs = [(p, args.work / f"{p.stem}.pth") for p in args.paintings]
    jobs += [(None, Path(r)) for r in args.reference]
    for painting, style in jobs:
        took = "-"
        if painting is not None and not (args.reuse and style.is_file()):
            took = f"{train(painting, style, args.minutes):.0f} s"
        ckpt = load_style(style)
        art = read_image(painting) if painting is not None else np.asarray(
            ckpt.style.get("thumbnail"))
        overrides = {} if painting is None else {  # a reference keeps its own settings
            "palette": args.palette, "shading": args.shading, "keep_face": args.keep_face}
        stylizer = Stylizer(ckpt, StylizerSettings(max_side=WORK_SIDE, **overrides))
        outputs = [stylizer.stylize(f) for f in frames]
        metrics = look(frames, outputs, art)
        label = f"{ckpt.name} ({'quick' if painting is not None else 'full'})"
        text = row_text(label, metrics).rstrip(" |")
        cells = text.split(" | ")
        warps = " | ".join(f"{warp_ratio(stylizer, c):.2f}" for c in (demo_clip(), WEBCAM_LIKE))
        print(f"{cells[0]} | {took} | {' | '.join(cells[1:])} | {warps} |", flush=True)
        rows.append([resize_max_side(art, WORK_SIDE)] + [outputs[i] for i in shown])
        captions.append([label])
    if args.sheet:
        write_image(args.sheet, contact_sheet(rows, (320, 240), captions=captions))
        print(f"wrote {args.sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
