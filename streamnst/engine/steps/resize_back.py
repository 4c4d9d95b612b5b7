"""Back to the frame's own size (bilinear: the working size is never larger)."""

from __future__ import annotations

import torch.nn.functional as F

from streamnst.engine.steps.base import Step, Work
from streamnst.media.imageio import resize_to


class ResizeBack(Step):
    name = "resize"

    def active(self, st, w: Work) -> bool:
        return w.size != w.image.shape[:2]

    def host(self, st, w: Work) -> None:
        w.out = resize_to(w.out, w.image.shape[1::-1])

    def device(self, st, w: Work) -> None:
        w.out = F.interpolate(w.out, size=w.image.shape[:2], mode="bilinear",
                              align_corners=False)


STEP = ResizeBack()
