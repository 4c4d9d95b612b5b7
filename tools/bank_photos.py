"""Build the style bank's training folder: the shared photos plus frames of webcam-like clips.

    python tools/bank_photos.py OUT_DIR [--shared ../shared/data] [--every 6]

The photos are linked, not copied. Frames come from the first 15 of the 20 sign-language
clips (one person, upper body, like a video call); the last 5 clips, the demo clip's
sources and the other videos stay unseen, for judging the styles on frames training never
used. Rerunning it rewrites the same folder.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from streamnst.media.imageio import IMAGE_SUFFIXES, write_image
from streamnst.media.video import VideoReader

TRAIN_CLIPS = 15


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--shared", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--every", type=int, default=6, help="keep one frame in N")
    args = ap.parse_args()
    photos = args.out / "photos"
    frames = args.out / "frames"
    photos.mkdir(parents=True, exist_ok=True)
    frames.mkdir(parents=True, exist_ok=True)
    content = (args.shared / "content").resolve()
    for photo in sorted(p for p in content.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        link = photos / photo.relative_to(content)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():  # per file: a folder link is not followed by the trainer
            os.symlink(photo, link)
    clips = sorted((args.shared / "video" / "asl_gestures").glob("*.mkv"))[:TRAIN_CLIPS]
    count = 0
    for clip in clips:
        with VideoReader(clip) as reader:
            for i, frame in enumerate(reader):
                if i % args.every == 0:
                    write_image(frames / f"{clip.stem}_{i:04d}.jpg", frame)
                    count += 1
    print(f"{args.out}: photos linked from {args.shared / 'content'}, {count} frames of "
          f"{len(clips)} clips")


if __name__ == "__main__":
    main()
