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

#: size of the grain's blobs, in pixels of the network's input: a few pixels, like a
#: canvas weave under a brush stroke; coarser grain becomes content of its own
CELL = 4


def canvas_grain(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Nx1xHxW float32 grain of unit spread: smooth noise with blobs of about CELL px."""
    coarse = torch.randn(n, 1, h // CELL + 3, w // CELL + 3, generator=gen)
    fine = F.interpolate(coarse, scale_factor=CELL, mode="bicubic", align_corners=False)
    fine = fine[..., CELL:CELL + h, CELL:CELL + w]  # away from the resize's edges
    return fine / fine.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


@functools.lru_cache(maxsize=8)
def _screen_grain(h: int, w: int) -> np.ndarray:
    """The live path's one grain for a frame size, HxWx3 float32 (same on R, G and B)."""
    grain = canvas_grain(1, h, w, torch.Generator().manual_seed(0))[0, 0].numpy()
    return cv2.merge([grain, grain, grain])


def add_canvas(frame: np.ndarray, amount: float) -> np.ndarray:
    """HxWx3 uint8 with the screen grain added, `amount` levels (of 255) strong."""
    if amount <= 0.0:
        return frame
    h, w = frame.shape[:2]
    return cv2.add(frame, _screen_grain(h, w) * np.float32(amount), dtype=cv2.CV_8U)
