"""Flicker where nothing moves: how much the output changes from frame to frame at pixels
where the input does not, with no optical flow involved.

The warping-error ratio warps the previous output by a flow, and warping a finely textured
picture by a still camera's sub-pixel flow noise counts as error though nothing changed
(`streamnst eval` reports that part as frozen_ratio). This measure has no warp: at pixels
whose input changed by under 1 level, the mean change of the output (levels of 255 per
frame) and the share of those pixels whose output jumped by more than 8 levels (the
visible sparkles). Frames are stylised directly, as `live` does, with its default blend.

    python tools/still_flicker.py CLIP [CLIP ...] --style NAME_OR_PATH [--style ...]
        [--frames 60] [--blend flow|ema|off]

Prints one JSON object per style and clip.
"""

from __future__ import annotations

import argparse
import json

from streamnst.engine.stylizer import Stylizer
from streamnst.engine.temporal import MODES, Blender, BlendSettings
from streamnst.media.demo import resolve_media
from streamnst.offline.metrics import read_frames, still_flicker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--style", action="append", required=True)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--blend", choices=MODES, default="flow")
    args = parser.parse_args()
    for clip in args.clips:
        frames = list(read_frames(resolve_media(clip), args.frames))
        for style in args.style:
            stylizer, blender = Stylizer(style), Blender(BlendSettings(mode=args.blend))
            outputs = [stylizer.stylize(f, blender) for f in frames]
            row = {"clip": clip, "style": style, "blend": args.blend, "frames": len(frames),
                   **still_flicker(frames, outputs)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
