"""Move the output's colours toward the painting's (engine/palette.py): a video's
statistics are followed, a picture's matched."""

from __future__ import annotations

from streamnst.engine.steps.base import Step, Work


class Palette(Step):
    name = "palette"

    def active(self, st, w: Work) -> bool:
        return st.palette is not None

    def host(self, st, w: Work) -> None:
        w.out = st.palette(w.out, follow=w.blend is not None)

    def device(self, st, w: Work) -> None:
        w.out = st.palette.on_tensor(w.out, follow=w.blend is not None)


STEP = Palette()
