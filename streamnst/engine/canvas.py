"""A canvas for flat regions: a faint, smooth, fixed grain added to the network's input.

A convolutional network treats every position alike: where its input is flat (a wall, a
sky), every pixel sees the same numbers, so it paints one flat colour there however strong
the style. Gatys' optimisation breaks that symmetry through its start image; a fast network
needs the input to do it. A grain a few levels strong gives each spot of a wall something
to paint on, as the weave of a canvas does. It is the same grain in every frame, fixed to
the screen, so a still camera's walls stay still; moving things carry their own texture.
Styles trained with `--canvas` see a fresh grain in every crop; the amount is stored with
the style, and `--canvas` overrides it for a run.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from streamnst.engine.flow import warp, warp_image

#: size of the grain's blobs, in pixels of the network's input: a few pixels, like a
#: canvas weave under a brush stroke; coarser grain becomes content of its own
CELL = 4


def canvas_grain(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Nx1xHxW float32 grain of unit spread: smooth noise with blobs of about CELL px."""
    coarse = torch.randn(n, 1, h // CELL + 3, w // CELL + 3, generator=gen)
    fine = F.interpolate(coarse, scale_factor=CELL, mode="bicubic", align_corners=False)
    fine = fine[..., CELL:CELL + h, CELL:CELL + w]  # away from the resize's edges
    if h * w < 2:  # one pixel has no spread (std() warns): the grain is that one value
        return fine.sign()
    return fine / fine.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


@functools.lru_cache(maxsize=8)
def screen_grain(h: int, w: int) -> np.ndarray:
    """The live path's fixed grain for a frame size: HxW float32, unit spread, read-only."""
    grain = canvas_grain(1, h, w, torch.Generator().manual_seed(0))[0, 0].numpy()
    grain.setflags(write=False)
    return grain


def add_grain(frame: np.ndarray, grain: np.ndarray, amount: float) -> np.ndarray:
    """HxWx3 uint8 plus an HxW grain times `amount` levels, the same on R, G and B."""
    delta = grain * np.float32(amount)
    return cv2.add(frame, cv2.merge([delta, delta, delta]), dtype=cv2.CV_8U)


def add_canvas(frame: np.ndarray, amount: float) -> np.ndarray:
    """HxWx3 uint8 with the fixed screen grain added, `amount` levels (of 255) strong."""
    if amount <= 0.0:
        return frame
    return add_grain(frame, screen_grain(*frame.shape[:2]), amount)


def screen_grain_tensor(h: int, w: int, device: torch.device) -> torch.Tensor:
    """`screen_grain` as a 1x1xHxW tensor on `device`, uploaded once per size."""
    key = (h, w, str(device))
    if key not in _SCREEN_ON_DEVICE:
        if len(_SCREEN_ON_DEVICE) >= 8:
            _SCREEN_ON_DEVICE.clear()
        _SCREEN_ON_DEVICE[key] = torch.tensor(screen_grain(h, w), device=device)[None, None]
    return _SCREEN_ON_DEVICE[key]


_SCREEN_ON_DEVICE: dict[tuple, torch.Tensor] = {}


def add_grain_tensor(frame: torch.Tensor, grain: torch.Tensor, amount: float) -> torch.Tensor:
    """`add_grain` on the device road: 1x3xHxW in [0, 1] plus a 1x1xHxW grain times
    `amount` levels of 255, the same on R, G and B."""
    return (frame + grain * (amount / 255.0)).clamp_(0.0, 1.0)


class MovingCanvas:
    """The grain carried along by the picture's motion, frame to frame (after Bousseau et
    al.'s texture advection for watercolour video): strokes painted from it then move with
    a person instead of staying on the screen while they pass. Where the flow fails
    (occlusions, a cut) the fixed screen grain takes over, so a wall a person uncovers
    gets back the grain it had; a little of it is mixed in everywhere, every frame, so
    blur and drift from repeated warping cannot build up."""

    RELAX = 0.05  # share of the screen grain mixed back in every frame

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._grain = None
        self._grain_t: torch.Tensor | None = None  # the same, on the device road

    def follow_tensor(self, flow: torch.Tensor | None, reliable: torch.Tensor | None,
                      size: tuple[int, int], device: torch.device) -> torch.Tensor:
        """`follow` on the device road: 1x2xHxW flow and 1x1xHxW trust on `device` (None
        after a cut or at the start) -> the 1x1xHxW grain there."""
        base = screen_grain_tensor(*size, device)
        grain = self._grain_t
        if flow is None or reliable is None or grain is None or grain.shape != base.shape \
                or grain.device != base.device:
            self._grain_t = base
            return base
        warped = warp(grain, flow, padding_mode="border", mode="bilinear")
        keep = reliable * (1.0 - self.RELAX)
        self._grain_t = base + (warped - base) * keep
        return self._grain_t

    def follow(self, flow, reliable: np.ndarray | None,
               size: tuple[int, int]) -> np.ndarray:
        """The HxW grain for the current frame, given the flow from it to the previous
        frame (an HxWx2 array, or the blend's Motion; None after a cut or at the start)
        and how far to trust it (HxW). A Motion is warped only in its regions (its moving
        boxes where they are sparse): the rest of the grain stays where it is."""
        base = screen_grain(*size)
        if flow is None or reliable is None or self._grain is None \
                or self._grain.shape != base.shape:
            self._grain = base
            return base
        # the flow comes from Blender.track, which already zeroes a still camera's noise
        regions = [((0, size[0], 0, size[1]), flow)] if isinstance(flow, np.ndarray) \
            else flow.regions()
        moved = [(box, warp_image(self._grain, f, cubic=False, origin=(box[2], box[0])))
                 for box, f in regions]
        # grain = warped * keep + base * (1 - keep): in place, in three passes
        keep = reliable * np.float32(1.0 - self.RELAX)
        grain = self._grain if self._grain is not base else base.copy()
        for (y0, y1, x0, x1), warped in moved:
            grain[y0:y1, x0:x1] = warped
        np.subtract(grain, base, out=grain)
        np.multiply(grain, keep, out=grain)
        self._grain = np.add(grain, base, out=grain)
        return grain
