"""A training run's steadiness as the live filter shows it: the network as it stands, with
the style's live settings and the flow blend, over a short stretch of a real clip, scored by
the warping-error ratio (offline/metrics.py). The training's own stabilisation terms do not
predict it (docs/gallery.md), so a quick run that steers its stabilisation looks at this.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.media.demo import demo_clip
from streamnst.media.imageio import resize_max_side
from streamnst.nets.checkpoint_io import StyleCheckpoint
from streamnst.offline.metrics import WarpReference, read_frames

#: the stretch of the bundled demo clip watched: past the first 60 frames, which
#: tools/quick_report.py scores, so the report is not the check's own; over the bank's
#: twelve styles its ratio is 1.01x the report's on average (correlation 0.997)
START, FRAMES = 260, 24
SIDE = 640  # the live filter's working size


class LiveWarpCheck:
    """The live warping-error ratio of a network, on frames whose flows are computed once."""

    def __init__(self, clip: str | Path | None = None, start: int = START,
                 frames: int = FRAMES, side: int = SIDE) -> None:
        clip_frames = islice(read_frames(clip or demo_clip()), start, start + frames)
        self.side = side
        self.reference = WarpReference([resize_max_side(f, side) for f in clip_frames])

    def ratio(self, style: StyleCheckpoint) -> float:
        """The warping-error ratio of `style`, live settings and flow blend, on the stretch."""
        stylizer = Stylizer(style, StylizerSettings(max_side=self.side, device="cpu"))
        blend = Blender(BlendSettings(mode="flow"))
        return self.reference.ratio([stylizer.stylize(f, blend)
                                     for f in self.reference.frames])
