"""Keep the input's colours: the painting's light and strokes in the camera's colours
(engine/colours.py). Last of the painting steps, so the colours are exactly the input's."""

from __future__ import annotations

from streamnst.engine.colours import keep_colors, keep_colors_tensor
from streamnst.engine.steps.base import Step, Work


class Colours(Step):
    name = "colours"

    def active(self, st, w: Work) -> bool:
        return st.settings.keep_colors

    def host(self, st, w: Work) -> None:
        w.out = keep_colors(w.work, w.out)

    def device(self, st, w: Work) -> None:
        w.out = keep_colors_tensor(w.work, w.out)


STEP = Colours()
