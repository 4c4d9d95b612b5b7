"""Frame-to-frame blending of stylised output: off, ema, or flow-guided.

flow: the previous *output* is warped into the current frame with optical flow
computed on the *input* frames, and blended only where the flow is reliable (the
previous input, warped the same way, matches the current one): occluded and
disoccluded pixels take the new stylisation, so moving objects leave no ghost trails.
The blend is recursive, so every output carries an exponentially decaying memory of
earlier ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from streamnst.core.errors import InputError
from streamnst.core.frame import check_image
from streamnst.core.stages import StageTimes
from streamnst.engine.canvas import MovingCanvas
from streamnst.engine.flow import FlowEstimator, photometric_mask, warp_image
from streamnst.media.imageio import resize_to

MODES = ("off", "ema", "flow")
MAX_STRENGTH = 0.95  # at 1 the output would never change again
STILL_PX = 0.5  # px per frame
UNCHANGED_LEVELS = 4.0  # mean |change| (of 255) at flow size under which a pixel is still
_KERNEL3 = np.ones((3, 3), np.uint8)
UNTRACKED = object()  # the blend's `motion` when the caller did not track the frame


@dataclass(frozen=True)
class Motion:
    """How the current input moved since the previous one."""

    flow: np.ndarray | None  # HxWx2 current -> previous at the frame's size; None: a cut
    mask: np.ndarray | None  # HxW 0..1, how far to trust the flow at each pixel


@dataclass(frozen=True)
class BlendSettings:
    mode: str = "flow"
    strength: float = 0.7  # weight of the (warped) previous output, 0..MAX_STRENGTH
    flow_max_side: int = 256  # flow is computed at this size: cheap and smooth enough
    cut_threshold: float = 0.25  # below this reliable fraction, treat as a scene cut
    photo_tolerance: float = 40.0  # input mismatch (0-255) at which a pixel is not blended

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"blend mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.strength <= MAX_STRENGTH:
            raise InputError(f"blend strength must be between 0 and {MAX_STRENGTH}, "
                             f"got {self.strength}")
        if self.flow_max_side < 16:
            raise InputError("flow size must be at least 16 pixels")


class Blender:
    """Stateful blender: `track` each input frame, then blend it with its stylisation, in
    order. The two halves keep separate state (the inputs seen, the last output), so a
    pipeline may track frame N+1 in one thread while another still blends frame N."""

    def __init__(self, settings: BlendSettings | None = None) -> None:
        self.settings = settings or BlendSettings()
        self._flow = FlowEstimator(self.settings.flow_max_side, preset="fast")
        self.stages = StageTimes()  # the pipeline hands in its own
        self._canvas = MovingCanvas()
        self.reset()

    def reset(self) -> None:
        """Forget the past (after a style switch or a resize). Not while a frame tracked
        before it is still to be blended: the pipeline lets that one finish first."""
        # the input side, read and written by track()
        self._prev_in: np.ndarray | None = None
        self._prev_small: np.ndarray | None = None  # _prev_in at flow size
        self._canvas.reset()
        self.last_reliable: float = 0.0
        self.cuts = 0
        # the output side, read and written by the blend
        self._prev_out: np.ndarray | None = None  # the last output, uint8
        self.last_motion: Motion | None = None  # the motion of the frame blended last

    def update(self, settings: BlendSettings) -> None:
        if settings.flow_max_side != self.settings.flow_max_side:
            self._flow = FlowEstimator(settings.flow_max_side, preset="fast")
        self.settings = settings

    def __call__(self, inp: np.ndarray, stylized: np.ndarray,
                 motion: Motion | None | object = UNTRACKED) -> np.ndarray:
        """The output for input `inp`, stylised as `stylized`; `motion`: this frame's
        `track(inp)` where the caller has it (else it is tracked here)."""
        check_image(inp, "blend input")
        check_image(stylized, "stylised frame")
        if inp.shape != stylized.shape:
            raise InputError(f"input {inp.shape} and stylised {stylized.shape} sizes differ")
        if motion is UNTRACKED:
            motion = self.track(inp)
        s = self.settings
        t0 = time.perf_counter()
        new = stylized
        follows = self._follow_output(new.shape)
        if s.mode == "off" or s.strength == 0 or not follows:
            out = new
        elif s.mode == "ema":
            out = cv2.addWeighted(self._prev_out, s.strength, new, 1 - s.strength, 0.0)
        else:
            out = new if motion is None or motion.flow is None else self._flow_blend(new, motion)
        self._prev_out = out
        self.last_motion = motion
        self.stages.add("blend", (time.perf_counter() - t0) * 1000.0)
        return out

    def grain(self, inp: np.ndarray, motion: Motion | None) -> np.ndarray:
        """The canvas grain for this frame (engine/canvas.py): in flow mode carried along
        by this frame's `motion`, so the strokes painted from it move with the picture
        instead of staying on the screen; otherwise the fixed screen grain."""
        return self._canvas.follow(None if motion is None else motion.flow,
                                   None if motion is None else motion.mask, inp.shape[:2])

    def _follow_input(self, size: tuple[int, int]) -> bool:
        """Whether a frame of `size` follows the previous input, carried over a change of
        working size with the same picture (an adaptive scale step) so blending goes on
        instead of restarting with a one-frame flicker; a different aspect ratio is a
        different picture and starts over."""
        if self._prev_in is None:
            return False
        if self._prev_in.shape[:2] != size:
            if not _same_picture(self._prev_in.shape[:2], size):
                return False
            # flow runs at flow_max_side either side of the step, so _prev_small usually
            # fits as it is: the flow then compares two direct downsizes, not a resize of
            # a resize
            self._prev_in = resize_to(self._prev_in, size[::-1])
        return True

    def _follow_output(self, shape: tuple[int, ...]) -> bool:
        """Whether the last output applies to a frame of `shape`: the output half of
        `_follow_input` (a scale step resizes it too)."""
        if self._prev_out is None:
            return False
        if self._prev_out.shape != shape:
            if not _same_picture(self._prev_out.shape[:2], shape[:2]):
                return False
            self._prev_out = resize_to(self._prev_out, shape[1::-1])
        return True

    def track(self, inp: np.ndarray) -> Motion | None:
        """The motion from `inp` back to the previous input, or None where there is none to
        follow (not the flow mode, or the first frame of a picture). Call it once per frame,
        in order: `inp` becomes the previous input. Its result goes to `grain` and the
        blend."""
        follows = self._follow_input(inp.shape[:2])
        prev_in, prev_small = self._prev_in, self._prev_small
        self._prev_in = inp
        if self.settings.mode != "flow" or not follows:
            self._prev_small = None
            return None
        h, w = inp.shape[:2]
        small = self._small_size(h, w)
        cur_s, prev_s = resize_to(inp, small), prev_small
        self._prev_small = cur_s
        if prev_s is None or (prev_s.shape[1], prev_s.shape[0]) != small:
            prev_s = resize_to(prev_in, small)
        with self.stages.time("flow"):
            f_cp = self._flow(cur_s, prev_s)  # current -> previous
        # where the input did not change, nothing moved: the flow there is spill from a
        # moving neighbour or noise, and warping the canvas or a textured output by it
        # made still walls beside a moving hand sparkle
        f_cp[_unchanged(cur_s, prev_s)] = 0.0
        # one flow and a photometric check: a forward-backward check cost a second flow
        # and 2.6 ms of small torch ops a frame, and was no steadier (docs/benchmarks.md)
        mask = photometric_mask(cur_s, prev_s, f_cp, self.settings.photo_tolerance)
        self.last_reliable = float(mask.mean())
        if self.last_reliable < self.settings.cut_threshold:
            self.cuts += 1
            return Motion(None, None)
        # erode unreliable areas by a pixel (flow bleeds across edges), then soften; in
        # OpenCV: torch's stride-1 max_pool2d alone took 1.3 ms a frame at flow size
        mask = cv2.erode(mask, _KERNEL3)
        mask = cv2.blur(mask, (3, 3), borderType=cv2.BORDER_REPLICATE)
        # full size in OpenCV: grid_sample and element-wise torch ops on a 640x360
        # frame took 20 ms of every frame here, remap and blendLinear a few
        scale = np.array([w / small[0], h / small[1]], np.float32)
        flow = cv2.resize(f_cp * scale, (w, h), interpolation=cv2.INTER_LINEAR)
        # slower than STILL_PX is the flow's noise on a still camera: warping a textured
        # output (or the canvas) by it every frame made still walls shimmer
        _drop_still(flow)
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return Motion(flow, mask)

    def _flow_blend(self, new: np.ndarray, motion: Motion) -> np.ndarray:
        """The previous output warped into this frame, blended where the flow holds."""
        # bicubic: the output is warped again every frame, and bilinear's slight blur
        # compounds (sharpness 96 against 110 bicubic, 122 unblended, on the demo clip)
        warped = warp_image(self._prev_out, motion.flow)
        a = self.settings.strength * motion.mask
        return cv2.blendLinear(warped, new, a, 1.0 - a)

    def _small_size(self, h: int, w: int) -> tuple[int, int]:
        s = min(1.0, self.settings.flow_max_side / max(h, w))
        return max(8, round(w * s)), max(8, round(h * s))


def _same_picture(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether HxW sizes `a` and `b` have the same aspect ratio (within 2%)."""
    return abs(a[1] / a[0] - b[1] / b[0]) <= 0.02 * (b[1] / b[0])


_SUM_XY = np.ones((1, 2), np.float32)
# speed**2 > this is speed >= STILL_PX, in float32
_STILL_BELOW = float(np.nextafter(np.float32(STILL_PX ** 2), np.float32(0)))


def _drop_still(flow: np.ndarray) -> None:
    """Zero, in place, the HxWx2 flow that is slower than STILL_PX. In OpenCV: numpy's
    sum over the last axis and a boolean assignment took 7 ms of every 640x360 frame in
    the inference thread; this takes about 1."""
    speed2 = cv2.transform(cv2.multiply(flow, flow), _SUM_XY)
    _, keep = cv2.threshold(speed2, _STILL_BELOW, 1.0, cv2.THRESH_BINARY)
    cv2.multiply(flow, cv2.merge([keep, keep]), dst=flow)


def _unchanged(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """HxW bool: pixels whose input changed by less than UNCHANGED_LEVELS (camera noise)."""
    diff = cv2.transform(cv2.absdiff(cur, prev).astype(np.float32),
                         np.full((1, cur.shape[2]), 1.0 / cur.shape[2], np.float32))
    return diff < UNCHANGED_LEVELS
