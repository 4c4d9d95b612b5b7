"""--keep-face, measured: the detector, the issue's bar on close-up heads, the mask's
steadiness over a clip, its cost, and a picture to judge by eye.

    python tools/face_report.py [--sheet docs/keep_face.jpg] [--styles starry_night ...]

1. The detector on the 20 webcam-like ASL clips of ../shared/data (one frame in 15, at
   640x480): how often it finds a face, and its time on a whole frame and near a face.
2. On close-up heads (cut from the demo and two held-out clips), per style: how much of
   the default's change inside the face `--keep-face 1` takes away (bar: 50%), and how
   much of the background's change it keeps (bar: 80%). The face is the detector's box
   (brow to chin, cheek to cheek), the background everything else.
3. Over the demo clip with the flow blend, as `stylize` renders it: how much the mask
   moves from frame to frame (mean |change| where there is any) against a mask drawn
   from each frame's own detection, and the output's warping-error ratio with and
   without the option.
4. The cost per frame: in the live filter's way (the detector in its own thread), the
   inference thread's time for the mask and the mix, and the detector thread's time.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time
from pathlib import Path

import numpy as np
from look_report import VIDEO, held_out_frame  # tools/, beside this

from streamnst.engine.face_detect import FaceDetector, to_gray
from streamnst.engine.faces import FaceKeeper, face_mask, keep_face
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import contact_sheet, resize_to, write_image
from streamnst.offline.metrics import read_frames, warping_errors

CLOSE_UPS = ["demo:100@170,20,320,240", f"{VIDEO}/asl_gestures/student.mkv:20@200,0,240,180",
             f"{VIDEO}/asl_gestures/walk.mkv:20@200,10,240,180"]
SETTINGS = StylizerSettings(max_side=640)


def detector_rates(clips: list[str]) -> None:
    detector = FaceDetector()
    found = frames = 0
    full_ms, near_ms = [], []
    for clip in clips:
        for i, image in enumerate(read_frames(resolve_media(clip))):
            if i % 15:
                continue
            gray = to_gray(image)
            t0 = time.perf_counter()
            faces = detector.find_all(gray)
            full_ms.append((time.perf_counter() - t0) * 1000)
            frames += 1
            found += bool(faces)
            if faces:
                t0 = time.perf_counter()
                detector.find_near(gray, faces[0])
                near_ms.append((time.perf_counter() - t0) * 1000)
    print(f"detector: a face in {found}/{frames} frames ({100 * found / frames:.0f}%); "
          f"whole frame {statistics.median(full_ms):.1f} ms, near a face "
          f"{statistics.median(near_ms):.1f} ms (medians)")


def _box(size: tuple[int, int], face) -> np.ndarray:
    """HxW bool: the detector's own box (brow to chin, cheek to cheek)."""
    where = np.zeros(size, bool)
    half = face.size / 2
    where[max(0, round(face.cy - half)):round(face.cy + half),
          max(0, round(face.cx - half)):round(face.cx + half)] = True
    return where


def _change(out: np.ndarray, frame: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(out.astype(np.float32) - frame)[where].mean())


def bar(styles: list[str], close_ups: list[str]) -> list[list[np.ndarray]]:
    """The bar's table; returns the sheet's rows (input, default, 0.6, 1, keep-colors)."""
    rows = []
    print("| style | close-up | face change cut | background change kept |\n|---|---|---|---|")
    heads = [held_out_frame(spec) for spec in close_ups]
    for name in styles:
        stylizer = Stylizer(name, SETTINGS)
        for spec, head in zip(close_ups, heads, strict=True):
            faces = FaceDetector().find_all(to_gray(head))
            if not faces:
                print(f"| {stylizer.name} | {Path(spec).name} | no face found | |")
                continue
            face = _box(head.shape[:2], faces[0])
            background = ~face
            outs = {}
            for amount in (0.0, 0.6, 1.0):
                stylizer.set_keep_face(amount)
                outs[amount] = stylizer.stylize(head)
            stylizer.set_keep_face(None)
            stylizer.set_keep_colors(True)
            colours = stylizer.stylize(head)
            stylizer.set_keep_colors(False)
            cut = 1 - _change(outs[1.0], head, face) / _change(outs[0.0], head, face)
            kept = _change(outs[1.0], head, background) / _change(outs[0.0], head, background)
            print(f"| {stylizer.name} | {Path(spec).name.split('@')[0]} | {100 * cut:.0f}% | "
                  f"{100 * kept:.0f}% |", flush=True)
            rows.append([head, outs[0.0], outs[0.6], outs[1.0], colours])
    return rows


def steadiness(style: str, frames: int) -> None:
    clip = list(read_frames(resolve_media("demo"), frames))
    detector = FaceDetector()
    steps, raw_steps = [], []
    prev = prev_raw = None
    stylizer = Stylizer(style, SETTINGS)
    outputs = {}
    for amount in (0.0, 1.0):
        stylizer.set_keep_face(amount)
        blend, keeper = Blender(), FaceKeeper()
        outs = []
        for image in clip:
            outs.append(stylizer.stylize(image, blend, keeper))
            if amount == 0.0:
                continue
            mask = keeper.last_mask
            raw = face_mask(image.shape[:2], [(f, 1.0) for f in
                                              detector.find_all(to_gray(image))[:1]])
            mask = np.zeros(image.shape[:2], np.float32) if mask is None else mask
            raw = np.zeros(image.shape[:2], np.float32) if raw is None else raw
            if prev is not None:
                steps.append(_moved(prev, mask))
                raw_steps.append(_moved(prev_raw, raw))
            prev, prev_raw = mask, raw
        outputs[amount] = outs
    ratio = {a: warping_errors(outs, clip).ratio for a, outs in outputs.items()}
    print(f"mask over {frames} demo frames: moves {np.mean(steps):.4f} a frame (mean |change| "
          f"where it has any) against {np.mean(raw_steps):.4f} drawn from each frame's own "
          f"detection ({np.mean(raw_steps) / max(np.mean(steps), 1e-9):.1f}x steadier); "
          f"warping-error ratio {ratio[0.0]:.3f} without, {ratio[1.0]:.3f} with --keep-face 1")


def _moved(a: np.ndarray, b: np.ndarray) -> float:
    where = (a > 0) | (b > 0)
    return float(np.abs(a - b)[where].mean()) if where.any() else 0.0


def cost(frames: int) -> None:
    """Only the keeper's own work, as the inference thread does it (detector in a thread)."""
    clip = [resize_to(f, (640, 360)) for f in read_frames(resolve_media("demo"), frames)]
    blend, keeper = Blender(), FaceKeeper(background=True)
    loop_ms = []
    for image in clip:
        blend(image, image)
        t0 = time.perf_counter()
        mask = keeper.mask(image, None, blend.last_motion)
        keep_face(image, image, mask, 1.0)
        loop_ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(1 / 30)  # a frame's time, as live: the detector thread keeps up
    keeper.close()
    print(f"cost at 640x360 over {frames} demo frames: the frame loop "
          f"{statistics.median(loop_ms):.2f} ms median ({np.mean(loop_ms):.2f} mean); the "
          f"detector thread {keeper.detect_ms / frames:.2f} ms a frame ({keeper.detections} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["starry_night", "great_wave", "woodcut"])
    parser.add_argument("--frames", type=int, default=300, help="demo frames for 3. and 4.")
    parser.add_argument("--rate-clip", action="append", help="clips for 1. (default: the "
                        "ASL clips)")
    parser.add_argument("--close-up", action="append", help="CLIP:INDEX[@x,y,w,h] for 2.")
    parser.add_argument("--sheet", type=Path, help="write input/default/0.6/1/keep-colors here")
    args = parser.parse_args()
    close_ups = args.close_up or CLOSE_UPS
    detector_rates(args.rate_clip or sorted(glob.glob(f"{VIDEO}/asl_gestures/*.mkv")))
    rows = bar(args.styles, close_ups)
    steadiness(args.styles[0], args.frames)
    cost(args.frames)
    if args.sheet:
        captions = [["input", "default", "--keep-face 0.6", "--keep-face 1", "--keep-colors"]]
        n = len(close_ups)  # one row per style, each on the next close-up
        rows = [rows[i * n + i % n] for i in range(len(rows) // n)]
        write_image(args.sheet, contact_sheet(rows, (320, 240), captions=captions * len(rows)))


if __name__ == "__main__":
    main()
