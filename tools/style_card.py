"""Per-style report card: the numbers docs/gallery.md gives for each style, in one run.

For each style (name or .pth), with the live filter's default settings (flow blend, the
style's own shading and canvas):
- on the demo frame (75) at 384 px, beside the Gatys render of the same frame (VGG19, the
  quality anchor; cached as PNG in --anchors): VGG19 Gram distance to the painting and its
  ratio to Gatys', Lab colour distance to the painting against the input's, and texture
  (Laplacian variance of the output over the input's);
- on each clip (default: the demo clip and one-by-one-person): the warping-error ratio, the
  ratio a frozen first frame would score (what the metric charges texture), texture, and
  the output's change where the input is still (tools/still_flicker.py); all on the frames
  as the live filter makes them, not re-encoded.

    python tools/style_card.py --style starry_night --style runs/new.pth [--frames 60]
        [--clip demo --clip ../shared/data/video/one-by-one-person-detection.mp4]

Prints one markdown table (and, with --json, the rows as one JSON line after it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import read_image, resize_max_side, write_image
from streamnst.nets.checkpoint_io import load_style
from streamnst.nets.vgg import load_vgg
from streamnst.offline.gatys import Gatys, GatysSettings
from streamnst.offline.metrics import (
    colour_distance,
    lab_moments,
    laplacian_variance,
    read_frames,
    still_flicker,
    warping_errors,
)

HERE = Path(__file__).resolve().parent
STYLES_DIR = HERE.parent / "styles"
SIZE = 384  # the anchor frame's longest side, as the anchors in docs/anchors were made
ANCHOR_FRAME = 75  # of the demo clip: the webcam-like frame every anchor is rendered from
DEFAULT_CLIPS = ["demo", str(HERE.parent.parent / "shared/data/video/"
                             "one-by-one-person-detection.mp4")]


def anchor_frame(index: int = ANCHOR_FRAME) -> np.ndarray:
    for i, image in enumerate(read_frames(resolve_media("demo"), index + 1)):
        if i == index:
            return resize_max_side(image, SIZE)
    raise SystemExit(f"the demo clip has no frame {index}")


def gram_distances(painting: np.ndarray, vgg, *images: np.ndarray) -> list[float]:
    """The training style loss between each image and the painting, all at SIZE px (the
    painting's Gram matrices computed once)."""
    import torch

    from streamnst.media.tensors import image_to_tensor
    from streamnst.nets.losses import gram, style_loss
    from streamnst.nets.vgg import STYLE_LAYERS

    def feats(x: np.ndarray):
        return vgg(image_to_tensor(resize_max_side(x, SIZE), torch.device("cpu")))

    layers = [n for n in STYLE_LAYERS if n in vgg.layers]
    weights = dict.fromkeys(layers, 1.0)
    with torch.no_grad():
        target = {k: gram(v) for k, v in feats(painting).items() if k in layers}
        return [float(style_loss(feats(image), target, weights)) for image in images]


def gatys_anchor(frame: np.ndarray, painting: np.ndarray, key: str, cache: Path,
                 iterations: int) -> np.ndarray:
    """Gatys' render of the anchor frame (VGG19, L-BFGS), from the cache when there."""
    path = cache / f"gatys_{key}_{SIZE}_{iterations}.png"
    if path.is_file():
        return read_image(path)
    settings = GatysSettings(resize=SIZE, first_iterations=iterations)
    engine = Gatys(painting, load_vgg(None, settings.layers), settings)
    image = engine.stylize_image(frame)
    print(f"  gatys {key}: {engine.stop_reason}", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    write_image(path, image)
    return image


def clip_row(stylizer: Stylizer, clip: Path, frames: int) -> dict:
    """Warping error (as `eval`), texture and still flicker with the default flow blend, on
    the frames as the live filter hands them to a virtual camera: not re-encoded, since
    H.264 adds flicker of its own to a textured picture."""
    blender = Blender(BlendSettings())
    inputs = list(read_frames(clip, frames))
    outputs = [stylizer.stylize(image, blender) for image in inputs]
    report = warping_errors(outputs, inputs)
    return {"warp": report.ratio, "frozen": report.frozen_ratio,
            "texture": report.sharpness_stylized / report.sharpness_original,
            **still_flicker(inputs, outputs)}


def card(style: str, frame: np.ndarray, clips: list[Path], frames: int, cache: Path,
         iterations: int, vgg) -> dict:
    ckpt = load_style(style)
    image = STYLES_DIR / str(ckpt.style.get("image", ""))
    if not image.is_file():
        raise SystemExit(f"{style}: its painting {image.name!r} is not in styles/")
    painting = read_image(image)
    stylizer = Stylizer(ckpt, StylizerSettings())
    out = stylizer.stylize(frame)
    gatys = gatys_anchor(frame, painting, image.stem, cache, iterations)
    palette = lab_moments(painting)
    gram, gram_gatys, gram_input = gram_distances(painting, vgg, out, gatys, frame)
    row = {"style": style, "gram": gram, "gram_gatys": gram_gatys, "gram_input": gram_input,
           "colour": colour_distance(out, palette),
           "colour_input": colour_distance(frame, palette),
           "texture": laplacian_variance(out) / laplacian_variance(frame)}
    for clip in clips:
        row[clip.stem] = clip_row(stylizer, clip, frames)
    return row


def markdown(rows: list[dict], clips: list[Path]) -> str:
    head = ["style", "Gram (x Gatys)", "colour vs input", "texture"]
    for clip in clips:
        head += [f"{clip.stem[:12]}: warp (frozen)", "texture", "still change (jumps)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["style"], f"{r['gram']:.3f} ({r['gram'] / r['gram_gatys']:.1f}x)",
                 f"{100 * (1 - r['colour'] / r['colour_input']):.0f}% lower",
                 f"{r['texture']:.2f}"]
        for clip in clips:
            c = r[clip.stem]
            cells += [f"{c['warp']:.2f} ({c['frozen']:.2f})", f"{c['texture']:.2f}",
                      f"{c['still_change']:.2f} ({100 * c['still_jumps']:.2f}%)"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", action="append", required=True, help="name or .pth")
    parser.add_argument("--clip", action="append", help="clips (default: demo, one-by-one)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--anchors", type=Path, default=HERE.parent / "docs" / "anchors",
                        help="where Gatys renders are kept")
    parser.add_argument("--gatys-iterations", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clips = [resolve_media(c) for c in args.clip or DEFAULT_CLIPS]
    vgg, frame = load_vgg(), anchor_frame()
    rows = []
    for style in args.style:
        rows.append(card(style, frame, clips, args.frames, args.anchors,
                         args.gatys_iterations, vgg))
        print(f"{style}: done", flush=True)
    print(markdown(rows, clips))
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
