"""The frame's motion since the previous one (the flow blend's): estimated on a small copy
of the frame as it came in, on the host (OpenCV's DIS), on both roads, so both follow
the same motion; the device road takes the small flow up and upsamples it there, when a
later step first asks (Motion.on)."""

from __future__ import annotations

from streamnst.engine.steps.base import Step, Work


class Tracking(Step):
    name, half = "flow", "begin"

    def active(self, st, w: Work) -> bool:
        return w.blend is not None

    def timed(self, w: Work) -> bool:
        # in the other modes tracking only keeps the input history: no flow, no stage
        return w.blend.settings.mode == "flow"

    def host(self, st, w: Work) -> None:
        w.motion = w.blend.track(w.image, w.size)

    def device(self, st, w: Work) -> None:
        # the host's own frame, shrunk straight to the flow's size: nothing comes down
        w.motion = w.blend.track(w.image, w.size)


STEP = Tracking()
