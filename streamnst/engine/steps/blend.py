"""Blend with the previous output, warped by the motion (engine/temporal.py)."""

from __future__ import annotations

from streamnst.engine.steps.base import Step, Work


class Blend(Step):
    name = "blend"

    def active(self, st, w: Work) -> bool:
        return w.blend is not None

    def host(self, st, w: Work) -> None:
        w.out = w.blend(w.work, w.out, w.motion)

    def device(self, st, w: Work) -> None:
        w.out = w.blend.blend_tensor(w.out, w.motion)


STEP = Blend()
