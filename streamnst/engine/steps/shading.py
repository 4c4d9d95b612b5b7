"""Give back the input's broad light and shade (engine/shading.py)."""

from __future__ import annotations

from streamnst.engine.shading import keep_shading, keep_shading_tensor
from streamnst.engine.steps.base import Step, Work


class Shading(Step):
    name = "shading"

    def active(self, st, w: Work) -> bool:
        return st.shading > 0.0

    def host(self, st, w: Work) -> None:
        w.out = keep_shading(w.work, w.out, st.shading)

    def device(self, st, w: Work) -> None:
        w.out = keep_shading_tensor(w.work, w.out, st.shading)


STEP = Shading()
