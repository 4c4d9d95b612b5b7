"""The stylizer's chain: an ordered list of steps, each a file of its own in this folder
(one Step with a host and a device version; a step reads its amount off the stylizer,
which resolves the user's setting against the style's stored one). `Stylizer.begin`
runs the "begin" steps, `finish` the rest, in this order.

Adding a step: one new file here, and one line in CHAIN.
"""

from __future__ import annotations

from streamnst.engine.steps import (
    blend,
    canvas,
    colours,
    faces,
    motion,
    network,
    palette,
    resize_back,
    shading,
    working,
)
from streamnst.engine.steps.base import Step, StepTimer, Work

CHAIN: tuple[Step, ...] = (
    working.STEP,  # the frame at the working size (on the device road: uploaded)
    motion.STEP,  # its motion since the previous frame
    canvas.STEP,  # the grain the network paints flat regions from
    network.STEP,  # the painting
    shading.STEP,  # the input's broad light and shade back
    palette.STEP,  # the painting's colours
    blend.STEP,  # the previous output, warped, where the flow holds
    faces.STEP,  # faces show through
    colours.STEP,  # the input's colours
    resize_back.STEP,  # the frame's own size
)

__all__ = ["CHAIN", "Step", "StepTimer", "Work"]
