"""Give back the input's broad light and shade (engine/shading.py)."""

from __future__ import annotations

from dataclasses import dataclass

from streamnst.engine.shading import SIGMA, keep_shading, keep_shading_tensor
from streamnst.engine.steps.base import Step, Work


@dataclass(frozen=True)
class Settings:
    amount: float = 0.0  # 0..1
    sigma: float = SIGMA  # of the coarse luminance, in working pixels


class Shading(Step):
    name = "shading"

    def active(self, st, w: Work) -> bool:
        return st.shading > 0.0

    def host(self, st, w: Work) -> None:
        w.out = keep_shading(w.work, w.out, st.shading)

    def device(self, st, w: Work) -> None:
        w.out = keep_shading_tensor(w.work, w.out, st.shading)


STEP = Shading()
