"""Frame-to-frame blending of stylised output: off, ema, or flow-guided.

flow: the previous *output* is warped into the current frame with optical flow
computed on the *input* frames, and blended only where the flow is reliable (the
previous input, warped the same way, matches the current one): occluded and
disoccluded pixels take the new stylisation, so moving objects leave no ghost trails.
The blend is recursive, so every output carries an exponentially decaying memory of
earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from streamnst.core.errors import InputError
from streamnst.core.frame import check_image
from streamnst.engine.canvas import MovingCanvas
from streamnst.engine.flow import FlowEstimator, photometric_mask, warp, warp_image
from streamnst.media.imageio import resize_to, shrink

MODES = ("off", "ema", "flow")
MAX_STRENGTH = 0.95  # at 1 the output would never change again
STILL_PX = 0.5  # px per frame
UNCHANGED_LEVELS = 4.0  # mean |change| (of 255) at flow size under which a pixel is still
_KERNEL3 = np.ones((3, 3), np.uint8)
TILE = 8  # small (flow-size) pixels a side of the tiles motion is gathered in
MAX_BOXES = 64  # moving boxes warped apart; more are warped as one
UNTRACKED = object()  # the blend's `motion` when the caller did not track the frame


class Motion:
    """How the current input moved since the previous one, at the working size.

    The flow is estimated small (`BlendSettings.flow_max_side`) and kept that way: each
    step that needs it at the working size asks for it there, once (`flow`, `mask` on the
    host; `on(device)` as tensors), and the host steps warp only inside `boxes`, where
    anything moves: a flow slower than STILL_PX is zeroed, so elsewhere a warp is a copy
    (a still camera's frame is mostly such pixels: 96% of the demo clip's).
    """

    def __init__(self, flow: np.ndarray | None, mask: np.ndarray | None, *,
                 small: tuple[np.ndarray, np.ndarray] | None = None,
                 size: tuple[int, int] | None = None) -> None:
        """`flow` (HxWx2, current -> previous; None: a cut) and `mask` (HxW 0..1, how far
        to trust it) at the working size; or `small`, the (flow, mask) pair at flow size
        in its own pixels, and the working `size` (H, W) they stand for."""
        self._flow, self._mask = flow, mask
        self._small = small
        self.size = size if size is not None else (None if flow is None else flow.shape[:2])
        self._tensors: dict[str, tuple] = {}
        self._boxes: list[tuple[int, int, int, int]] | None = None
        self._full: np.ndarray | None = None  # the small flow upsampled, before the drop

    @property
    def cut(self) -> bool:
        """No motion to follow: the picture changed (or there is no flow)."""
        return self._small is None and self._flow is None

    @property
    def flow(self) -> np.ndarray | None:
        """HxWx2 float32 at the working size, zero where slower than STILL_PX."""
        if self._flow is None and self._small is not None:
            if not self.sparse:  # moving nearly everywhere: one pass over the frame
                if self._full is None:
                    self._full = self._upsampled_flow()
                self._flow = self._full
                _drop_still(self._flow)
                return self._flow
            flow = np.zeros((*self.size, 2), np.float32)
            for box in self.boxes:
                y0, y1, x0, x1 = box
                flow[y0:y1, x0:x1] = self.flow_in(box)
            self._flow = flow
        return self._flow

    @property
    def mask(self) -> np.ndarray | None:
        """HxW float32 0..1 at the working size: how far to trust the flow."""
        if self._mask is None and self._small is not None:
            h, w = self.size
            self._mask = cv2.resize(self._small[1], (w, h), interpolation=cv2.INTER_LINEAR)
        return self._mask

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        """(y0, y1, x0, x1) boxes at the working size outside which the flow is zero."""
        if self._boxes is None:
            self._boxes = self._moving_boxes() if self._small is not None \
                else [] if self._flow is None else [(0, self.size[0], 0, self.size[1])]
        return self._boxes

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(flow 1x2xHxW, mask 1x1xHxW) float32 on `device`: the small pair goes up and
        is upsampled there (the working-size pair never crosses to the device)."""
        key = str(device)
        if key not in self._tensors:
            self._tensors[key] = self._tensors_on(device)
        return self._tensors[key]

    def _tensors_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """`on`: the flow and mask as tensors at the working size on `device`."""
        if self._small is None:  # made from working-size arrays (offline callers, tests)
            flow = torch.from_numpy(np.ascontiguousarray(self.flow)).permute(2, 0, 1)[None]
            mask = torch.from_numpy(np.ascontiguousarray(self.mask))[None, None]
            return flow.to(device), mask.to(device)
        h, w = self.size
        small_flow, small_mask = (torch.from_numpy(np.ascontiguousarray(a))
                                  for a in self._small)
        if device.type == "cuda":
            small_flow, small_mask = small_flow.pin_memory(), small_mask.pin_memory()
        small_flow = small_flow.to(device, non_blocking=True).permute(2, 0, 1)[None]
        small_mask = small_mask.to(device, non_blocking=True)[None, None]
        sh, sw = small_flow.shape[-2:]
        scale = torch.tensor([w / sw, h / sh], device=device).view(1, 2, 1, 1)
        flow = F.interpolate(small_flow * scale, size=(h, w), mode="bilinear",
                             align_corners=False)
        speed2 = (flow * flow).sum(1, keepdim=True)
        flow = flow * (speed2 > _STILL_BELOW)  # the still camera's noise, as on the host
        mask = F.interpolate(small_mask, size=(h, w), mode="bilinear", align_corners=False)
        return flow, mask

    def _upsampled_flow(self) -> np.ndarray:
        h, w = self.size
        small = self._small[0]
        scale = np.array([w / small.shape[1], h / small.shape[0]], np.float32)
        return cv2.resize(small * scale, (w, h), interpolation=cv2.INTER_LINEAR)

    def _moving_boxes(self) -> list[tuple[int, int, int, int]]:
        """Boxes holding every pixel the upsampled flow moves by STILL_PX or more. A
        bilinear upsample is a convex mix of its 4 neighbours, so no pixel is faster
        than the fastest small pixel beside it: the small moving pixels, grown by one,
        bound them all. They are gathered in tiles of TILE small pixels, and each row's
        runs of moving tiles mapped up with a margin: a waving hand costs its own tiles,
        not a box around the whole person."""
        small = self._small[0]
        sh, sw = small.shape[:2]
        h, w = self.size
        fx, fy = small[..., 0] * (w / sw), small[..., 1] * (h / sh)
        moving = ((fx * fx + fy * fy) >= 0.98 * STILL_PX ** 2).astype(np.uint8)
        if not moving.any():
            return []
        moving = cv2.dilate(moving, _KERNEL3)
        ty, tx = -(-sh // TILE), -(-sw // TILE)
        padded = np.zeros((ty * TILE, tx * TILE), np.uint8)
        padded[:sh, :sw] = moving
        tiles = padded.reshape(ty, TILE, tx, TILE).any(axis=(1, 3))
        rx, ry = w / sw, h / sh
        boxes = []
        for row in range(ty):
            cols = np.flatnonzero(tiles[row])
            if not len(cols):
                continue
            starts = cols[np.r_[True, np.diff(cols) > 1]]
            ends = cols[np.r_[np.diff(cols) > 1, True]] + 1
            y0, y1 = row * TILE - 1, (row + 1) * TILE + 1
            for c0, c1 in zip(starts, ends, strict=True):
                x0, x1 = c0 * TILE - 1, c1 * TILE + 1
                boxes.append((max(0, int(y0 * ry)), min(h, int(np.ceil(y1 * ry))),
                              max(0, int(x0 * rx)), min(w, int(np.ceil(x1 * rx)))))
        if len(boxes) > MAX_BOXES:  # moving everywhere (a moving camera): one box
            boxes = [(min(b[0] for b in boxes), max(b[1] for b in boxes),
                      min(b[2] for b in boxes), max(b[3] for b in boxes))]
        return boxes

    @property
    def sparse(self) -> bool:
        """Whether the moving boxes cover under half the frame: box by box is then the
        cheaper warp; otherwise (a moving camera, or live frames far apart) the whole
        frame is warped at once."""
        h, w = self.size
        return sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in self.boxes) < 0.5 * h * w

    def regions(self) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """(box, its flow) pairs to warp: the moving boxes where they are sparse, else
        the whole frame in one."""
        if not self.sparse:
            return [((0, self.size[0], 0, self.size[1]), self.flow)]
        return [(box, self.flow_in(box)) for box in self.boxes]

    def field(self) -> tuple[np.ndarray, float]:
        """The flow where it was estimated, in working pixels, and its size over the
        working size (1 where it was given at the working size)."""
        if self._small is None:
            return self.flow, 1.0
        small = self._small[0]
        h, w = self.size
        sh, sw = small.shape[:2]
        return small * np.array([w / sw, h / sh], np.float32), sw / w

    def flow_in(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """The flow (as `flow` gives it) inside one of `boxes`, without making the whole
        frame's: the upsample is shared, the still-drop is the box's own."""
        y0, y1, x0, x1 = box
        if self._flow is not None:
            return self._flow[y0:y1, x0:x1]
        if self._full is None:
            self._full = self._upsampled_flow()
        flow = np.ascontiguousarray(self._full[y0:y1, x0:x1])
        _drop_still(flow)
        return flow


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
        self._canvas = MovingCanvas()
        self.reset()

    def reset(self) -> None:
        """Forget the past (after a style switch or a resize). Not while a frame tracked
        before it is still to be blended: the pipeline lets that one finish first."""
        # the input side, read and written by track()
        self._prev_in: np.ndarray | None = None
        self._prev_size: tuple[int, int] | None = None  # the working size _prev_in was for
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
        new = stylized
        follows = isinstance(self._prev_out, np.ndarray) and self._follow_output(new.shape)
        if s.mode == "off" or s.strength == 0 or not follows:
            out = new
        elif s.mode == "ema":
            out = cv2.addWeighted(self._prev_out, s.strength, new, 1 - s.strength, 0.0)
        else:
            out = new if motion is None or motion.cut else self._flow_blend(new, motion)
        self._prev_out = out
        self.last_motion = motion
        return out

    def blend_tensor(self, new: torch.Tensor, motion: Motion | None) -> torch.Tensor:
        """`__call__` on the device road: the 1x3xHxW stylised tensor in [0, 1] and this
        frame's motion -> the output, on the same device; the last output stays there."""
        s = self.settings
        prev = self._prev_out
        follows = isinstance(prev, torch.Tensor) and prev.device == new.device and (
            prev.shape == new.shape or _same_picture(prev.shape[-2:], new.shape[-2:]))
        if follows and prev.shape != new.shape:  # a scale step: the same picture, resized
            prev = F.interpolate(prev, size=new.shape[-2:], mode="bilinear",
                                 align_corners=False)
        if s.mode == "off" or s.strength == 0 or not follows:
            out = new
        elif s.mode == "ema":
            out = torch.lerp(new, prev, s.strength)
        elif motion is None or motion.cut:
            out = new
        else:
            flow, mask = motion.on(new.device)
            warped = warp(prev, flow, padding_mode="border", mode="bicubic").clamp_(0.0, 1.0)
            out = torch.lerp(new, warped, mask * s.strength)
        self._prev_out = out
        self.last_motion = motion
        return out

    def grain_tensor(self, size: tuple[int, int], motion: Motion | None,
                     device: torch.device) -> torch.Tensor:
        """`grain` on the device road: the 1x1xHxW grain on `device`."""
        if motion is None or motion.cut:
            return self._canvas.follow_tensor(None, None, size, device)
        flow, mask = motion.on(device)
        return self._canvas.follow_tensor(flow, mask, size, device)

    def grain(self, inp: np.ndarray, motion: Motion | None) -> np.ndarray:
        """The canvas grain for this frame (engine/canvas.py): in flow mode carried along
        by this frame's `motion`, so the strokes painted from it move with the picture
        instead of staying on the screen; otherwise the fixed screen grain."""
        if motion is None or motion.cut:
            return self._canvas.follow(None, None, inp.shape[:2])
        return self._canvas.follow(motion, motion.mask, inp.shape[:2])

    def _follow_input(self, size: tuple[int, int]) -> bool:
        """Whether a frame of working `size` follows the previous input, carried over a
        change of working size with the same picture (an adaptive scale step) so blending
        goes on instead of restarting with a one-frame flicker; a different aspect ratio
        is a different picture and starts over."""
        return self._prev_size is not None and (self._prev_size == size
                                                or _same_picture(self._prev_size, size))

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

    def track(self, inp: np.ndarray, size: tuple[int, int] | None = None) -> Motion | None:
        """The motion from `inp` back to the previous input, or None where there is none to
        follow (not the flow mode, or the first frame of a picture). Call it once per frame,
        in order: `inp` becomes the previous input. Its result goes to `grain` and the
        blend. `size`: the working size (H, W) the motion is for, where `inp` is the frame
        at another size (the device chain tracks the host's frame as it came in)."""
        size = inp.shape[:2] if size is None else tuple(size)
        follows = self._follow_input(size)
        prev_in, prev_small = self._prev_in, self._prev_small
        self._prev_in, self._prev_size = inp, size
        if self.settings.mode != "flow" or not follows:
            self._prev_small = None
            return None
        h, w = size
        small = self._small_size(h, w)
        cur_s, prev_s = shrink(inp, small), prev_small
        self._prev_small = cur_s
        if prev_s is None or (prev_s.shape[1], prev_s.shape[0]) != small:
            prev_s = shrink(prev_in, small)
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
        # the pair stays small: each step takes it to the working size where it needs it
        # (Motion), and only where something moves
        return Motion(None, None, small=(f_cp, mask), size=(h, w))

    def _flow_blend(self, new: np.ndarray, motion: Motion) -> np.ndarray:
        """The previous output warped into this frame, blended where the flow holds. The
        warp is a copy where nothing moves, so only the moving boxes are warped (the same
        result, bit for bit, as warping the whole frame)."""
        a = motion.mask * np.float32(self.settings.strength)
        b = 1.0 - a
        prev = self._prev_out
        if not motion.sparse:
            return cv2.blendLinear(warp_image(prev, motion.flow), new, a, b)
        out = cv2.blendLinear(prev, new, a, b)
        for (y0, y1, x0, x1), flow in motion.regions():
            # bicubic: the output is warped again every frame, and bilinear's slight blur
            # compounds (sharpness 96 against 110 bicubic, 122 unblended, on the demo clip)
            warped = warp_image(prev, flow, origin=(x0, y0))
            out[y0:y1, x0:x1] = cv2.blendLinear(warped, new[y0:y1, x0:x1],
                                                np.ascontiguousarray(a[y0:y1, x0:x1]),
                                                np.ascontiguousarray(b[y0:y1, x0:x1]))
        return out

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
