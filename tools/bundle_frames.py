"""Write the training frames that ship with the package (streamnst/media/assets/frames/).

`train --quick` fits a painting on these when no --data is given: people, faces and rooms,
from Intel's CC BY 4.0 sample videos (attribution in streamnst/media/assets/ATTRIBUTION.md).
The five ASL clips the demo clip is made of, and the clips tools/look_report.py measures
styles on, are left out: those frames stay held out.

    python tools/bundle_frames.py ../shared/data/video
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from streamnst.media.imageio import write_image
from streamnst.media.video import VideoReader

OUT = Path(__file__).resolve().parents[1] / "streamnst" / "media" / "assets" / "frames"
HELD_OUT = {"thanks", "help", "please", "sorry", "again",  # the demo clip
            "student", "walk", "want", "yes"}  # tools/look_report.py's frames
SIZE = (384, 288)  # 4:3, room for 192-pixel crops at a few positions


def frames_of(path: Path, count: int, size: tuple[int, int]) -> list:
    with VideoReader(path) as reader:
        frames = list(reader)
    step = len(frames) / count
    picked = [frames[int(i * step + step / 2)] for i in range(count)]
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in picked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video_dir", type=Path)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    clips = sorted(p for p in (args.video_dir / "asl_gestures").glob("*.mkv")
                   if p.stem not in HELD_OUT)
    for clip in clips:
        for i, frame in enumerate(frames_of(clip, 3, SIZE)):
            write_image(OUT / f"asl_{clip.stem}_{i}.jpg", frame)
        # and one close-up: head and shoulders fill the frame, as on a video call
        with VideoReader(clip) as reader:
            frame = next(iter(reader))
        h, w = frame.shape[:2]
        head = frame[: h // 2, w // 4: 3 * w // 4]
        write_image(OUT / f"asl_{clip.stem}_face.jpg",
                    cv2.resize(head, SIZE, interpolation=cv2.INTER_CUBIC))
    room = args.video_dir / "one-by-one-person-detection.mp4"
    for i, frame in enumerate(frames_of(room, 6, (384, 216))):
        write_image(OUT / f"room_{i}.jpg", frame)
    total = sum(p.stat().st_size for p in OUT.glob("*.jpg"))
    print(f"{len(list(OUT.glob('*.jpg')))} frames, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
