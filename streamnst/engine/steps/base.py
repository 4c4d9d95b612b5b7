"""What every step of the stylizer's chain shares: the frame on its way through (`Work`),
the step's shape (`Step`), and the timer that charges each step its milliseconds.

A frame goes through the chain on one of two roads, chosen once per stylizer:
- the host road: HxWx3 uint8 numpy frames and OpenCV, the fastest on a CPU (each step's
  kernel was measured against its torch twin there: docs/benchmarks.md);
- the device road: 1x3xHxW float tensors in [0, 1] on the network's device. The frame
  goes up once (`media.tensors.image_to_tensor`) and comes down once (`download`); only the
  flow's small copy is estimated on the host (DIS) and goes up small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from streamnst.core.stages import StageTimes

if TYPE_CHECKING:  # the stylizer runs the steps; they only read it
    from streamnst.engine.faces import FaceKeeper
    from streamnst.engine.stylizer import Stylizer
    from streamnst.engine.temporal import Blender, Motion


@dataclass
class Work:
    """One frame between the steps. `work` and `out` are numpy arrays on the host road
    and tensors on the device road (`device`)."""

    image: np.ndarray  # the frame as given, on the host
    size: tuple[int, int]  # the working size (H, W)
    device: torch.device | None  # None: the host road
    blend: Blender | None = None
    faces: FaceKeeper | None = None
    work: Any = None  # the frame at the working size
    motion: Motion | None = None  # its motion since the previous frame (the flow blend's)
    grained: Any = None  # what the network is given
    net: torch.Tensor | None = None  # the network's picture, 1x3xHxW float32
    out: Any = None  # the output so far
    timings: list = field(default_factory=list)  # CUDA events, read once the frame is down


class Step:
    """One step: `host` and `device` do the same thing on the two roads. `half` says
    which half of the chain runs it (`Stylizer.begin`, or `finish` on another thread)."""

    name = ""
    half = "finish"

    def active(self, st: Stylizer, w: Work) -> bool:
        return True

    def timed(self, w: Work) -> bool:
        """Whether the timer charges this run to the step's name (a step that records
        its own stages, or does no work worth a stage here, says no)."""
        return True

    def host(self, st: Stylizer, w: Work) -> None:
        raise NotImplementedError

    def device(self, st: Stylizer, w: Work) -> None:
        raise NotImplementedError


class StepTimer:
    """Charges each step its time: wall time on the host, CUDA events on a GPU (read
    after the frame's download, which waits for the GPU anyway, so timing never adds a
    synchronisation)."""

    def __init__(self, stages: StageTimes) -> None:
        self.stages = stages

    def run(self, step: Step, st: Stylizer, w: Work) -> None:
        run = step.host if w.device is None else step.device
        if not step.timed(w):
            run(st, w)
        elif w.device is not None and w.device.type == "cuda":
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            run(st, w)
            end.record()
            w.timings.append((step.name, start, end))
        else:
            with self.stages.time(step.name):
                run(st, w)

    def flush(self, w: Work) -> None:
        """Record the GPU milliseconds of a frame whose download has finished."""
        for name, start, end in w.timings:
            self.stages.add(f"gpu:{name}", start.elapsed_time(end))
        w.timings.clear()
