"""The canvas grain added to what the network sees (engine/canvas.py): carried along by
the motion with the flow blend, else fixed to the screen."""

from __future__ import annotations

from streamnst.engine.canvas import add_canvas, add_grain, add_grain_tensor, screen_grain_tensor
from streamnst.engine.steps.base import Step, Work


class Canvas(Step):
    name, half = "canvas", "begin"

    def active(self, st, w: Work) -> bool:
        return st.canvas > 0.0

    def host(self, st, w: Work) -> None:
        w.grained = add_grain(w.work, w.blend.grain(w.work, w.motion), st.canvas) \
            if w.blend is not None else add_canvas(w.work, st.canvas)

    def device(self, st, w: Work) -> None:
        grain = w.blend.grain_tensor(w.size, w.motion, w.device) if w.blend is not None \
            else screen_grain_tensor(*w.size, w.device)
        w.grained = add_grain_tensor(w.work, grain, st.canvas)


STEP = Canvas()
