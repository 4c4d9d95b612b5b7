"""The frame at the working size: `scale` of the frame's size capped by `max_side`. On
the device road this is where the frame goes up (once), and is resized there."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from streamnst.engine.steps.base import Step, Work
from streamnst.media.imageio import resize_to
from streamnst.media.tensors import image_to_tensor


@dataclass(frozen=True)
class Settings:
    scale: float = 1.0  # of the capped size
    max_side: int | None = None  # cap on the longer side; None: the frame's own


def working_scale(settings: Settings, h: int, w: int) -> float:
    """The scale a frame of this size is stylised at: `scale` of the working size, which
    is the frame's size capped by `max_side` (so a smaller scale always saves work)."""
    cap = settings.max_side
    return settings.scale * min(1.0, 1.0 if cap is None else cap / max(h, w))


def working_size(settings: Settings, h: int, w: int) -> tuple[int, int]:
    """(H, W) a frame of this size is worked at (itself where that is its own size)."""
    s = working_scale(settings, h, w)
    if s >= 1.0:
        return h, w
    return max(1, round(h * s)), max(1, round(w * s))


class Working(Step):
    name, half = "resize", "begin"

    def active(self, st, w: Work) -> bool:
        return w.device is not None or w.size != w.image.shape[:2]

    def host(self, st, w: Work) -> None:
        w.work = resize_to(w.image, w.size[::-1])

    def device(self, st, w: Work) -> None:
        x = image_to_tensor(w.image, w.device)
        if tuple(x.shape[-2:]) != w.size:  # shrinking: an area filter, as on the host
            x = F.interpolate(x, size=w.size, mode="area")
        w.work = x


STEP = Working()
