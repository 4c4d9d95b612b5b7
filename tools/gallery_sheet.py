"""Contact sheet of the style gallery: per style, its painting and the same real frames
stylised, so users choose a style by looking.

Frames come from CC BY 4.0 Intel sample clips (the only photos the project may ship): the
bundled ASL demo (a webcam-like face) and three still scenes given with --clip.

    python tools/gallery_sheet.py --clip ../shared/data/video/bottle-detection.mp4:120 \
        --clip ../shared/data/video/car-detection.mp4:200 \
        --clip ../shared/data/video/one-by-one-person-detection.mp4:300 \
        --out docs/gallery.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import contact_sheet, read_image, write_image
from streamnst.nets.checkpoint_io import StyleCheckpoint, bundled_dir, load_style
from streamnst.offline.metrics import read_frames

STYLES_DIR = Path(__file__).resolve().parent.parent / "styles"
BLANK = np.full((8, 8, 3), 255, np.uint8)


def gallery_order() -> list[str]:
    """Style names in the order of styles/gallery.txt (the order the README presents)."""
    lines = (STYLES_DIR / "gallery.txt").read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def frame_at(spec: str) -> np.ndarray:
    """CLIP[:INDEX] -> that frame (RGB)."""
    path, _, index = spec.rpartition(":") if ":" in spec else (spec, "", "0")
    wanted = int(index or 0)
    for i, image in enumerate(read_frames(resolve_media(path), wanted + 1)):
        if i == wanted:
            return image
    raise SystemExit(f"{path}: has no frame {wanted}")


def painting_of(ckpt: StyleCheckpoint) -> np.ndarray:
    """The style's painting from styles/, else its stored thumbnail, else a blank cell."""
    image = STYLES_DIR / str(ckpt.style.get("image", ""))
    if ckpt.style.get("image") and image.is_file():
        return read_image(image)
    if "thumbnail" in ckpt.style:
        return np.asarray(ckpt.style["thumbnail"])
    return BLANK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", action="append",
                        help="name or .pth (repeatable; default: every bundled style)")
    parser.add_argument("--clip", action="append", default=[],
                        help="CLIP:FRAME to stylise (repeatable); the demo clip is added")
    parser.add_argument("--demo-frame", type=int, default=75)
    parser.add_argument("--width", type=int, default=384, help="cell width (px)")
    parser.add_argument("--height", type=int, default=256, help="cell height (px)")
    parser.add_argument("--out", type=Path, default=Path("docs/gallery.jpg"))
    args = parser.parse_args()
    bundled = sorted(p.stem for p in bundled_dir().glob("*.pth"))
    order = gallery_order()
    styles = args.style or [s for s in order if s in bundled] + \
        [s for s in bundled if s not in order]
    frames = [frame_at(c) for c in args.clip] + [frame_at(f"demo:{args.demo_frame}")]
    rows = [[BLANK] + frames]
    captions = [["painting"] + ["original"] * len(frames)]
    for style in styles:
        ckpt = load_style(style)  # once, for the network and its painting
        stylizer = Stylizer(ckpt, StylizerSettings())
        rows.append([painting_of(ckpt)] + [stylizer.stylize(f) for f in frames])
        captions.append([stylizer.name])
        print(f"{stylizer.name}: done", flush=True)
    write_image(args.out, contact_sheet(rows, cell=(args.width, args.height), captions=captions))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
