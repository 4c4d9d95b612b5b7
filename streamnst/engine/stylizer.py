"""The one class every tool uses to turn RGB uint8 frames into stylised ones.

It is the only place where frames become tensors and back (the frame contract).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from streamnst.core.errors import InputError
from streamnst.core.frame import Frame, check_image
from streamnst.core.stages import StageTimes
from streamnst.engine.faces import FaceKeeper
from streamnst.engine.palette import PaletteMatch
from streamnst.engine.runner import ModelSettings, make_runner
from streamnst.engine.steps import CHAIN, StepTimer, Work
from streamnst.engine.steps.working import Settings as WorkingSettings
from streamnst.engine.steps.working import working_scale, working_size
from streamnst.engine.temporal import Blender
from streamnst.media.tensors import download, image_to_tensor, tensor_to_image
from streamnst.nets.checkpoint_io import MAX_CANVAS, StyleCheckpoint, bank_style, load_style

__all__ = ["FrameSettings", "ModelSettings", "Painting", "Stylizer", "StylizerSettings",
           "image_to_tensor", "tensor_to_image"]
CHAIN_ROADS = ("auto", "opencv", "torch")
MIN_SCALE = 0.1  # below it a frame is a few pixels: nothing left to paint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameSettings:
    """What every frame reads: changing any of these is in place, from the next frame."""

    scale: float = 1.0  # stylise at this fraction of the working size, resize back
    # cap on the longer side of the working size (a frame's own size by default):
    # cost grows with pixels, and the brush strokes keep the size they were trained at
    max_side: int | None = None
    # how much of the input's broad light and shade to give back (engine/shading.py);
    # None: the amount stored with the style
    shading: float | None = None
    # the grain (levels of 255) the network paints flat regions from (engine/canvas.py);
    # None: the amount the style was trained with
    canvas: float | None = None
    # how far each frame's colours move toward the painting's, 0..1 (engine/palette.py);
    # None: the amount stored with the style
    palette: float | None = None
    # the input's colours with the painting's light and strokes (engine/colours.py)
    keep_colors: bool = False
    # how much of a person's own face shows through, 0..1 (engine/faces.py); None: the
    # amount stored with the style
    keep_face: float | None = None
    # the keep-face amount where neither keep_face nor the style says one (the live filter,
    # a call's picture, keeps faces recognisable: live/__init__.py LIVE_KEEP_FACE)
    face_default: float = 0.0
    # where the chain around the network runs (engine/steps): auto (the network's device,
    # but OpenCV on the host where that is the CPU), opencv (the host), or torch (tensors
    # on the network's device, a CPU's too)
    chain: str = "auto"

    def __post_init__(self) -> None:
        if not MIN_SCALE <= self.scale <= 1.0:
            raise InputError(f"scale must be between {MIN_SCALE} and 1.0, got {self.scale}")
        if self.max_side is not None and self.max_side < 16:
            raise InputError(f"max side must be at least 16 pixels, got {self.max_side}")
        if self.shading is not None and not 0.0 <= self.shading <= 1.0:
            raise InputError(f"shading must be between 0 and 1, got {self.shading}")
        if self.canvas is not None and not 0.0 <= self.canvas <= MAX_CANVAS:
            raise InputError(f"canvas must be between 0 and {MAX_CANVAS:g}, got {self.canvas}")
        if self.palette is not None and not 0.0 <= self.palette <= 1.0:
            raise InputError(f"palette must be between 0 and 1, got {self.palette}")
        if self.keep_face is not None and not 0.0 <= self.keep_face <= 1.0:
            raise InputError(f"keep-face must be between 0 and 1, got {self.keep_face}")
        if self.chain not in CHAIN_ROADS:
            raise InputError(f"chain must be one of {', '.join(CHAIN_ROADS)}, "
                             f"got {self.chain!r}")


@dataclass(frozen=True)
class StylizerSettings(FrameSettings, ModelSettings):
    """Everything a stylizer is given, flat for its callers: `model` is what builds the
    network (engine/runner.py; another value means another Stylizer), `frame` what each
    frame reads (the set_* methods change it in place)."""

    def __post_init__(self) -> None:
        ModelSettings.__post_init__(self)
        FrameSettings.__post_init__(self)

    @property
    def model(self) -> ModelSettings:
        return ModelSettings(**{f.name: getattr(self, f.name)
                                for f in dataclasses.fields(ModelSettings)})

    @property
    def frame(self) -> FrameSettings:
        return FrameSettings(**{f.name: getattr(self, f.name)
                                for f in dataclasses.fields(FrameSettings)})


Painting = Work  # a frame between the two halves of the chain (`begin`, `finish`)


class Stylizer:
    """Stylise frames with one style network on the best available device."""

    def __init__(self, style: str | os.PathLike | StyleCheckpoint,
                 settings: StylizerSettings | None = None) -> None:
        self.settings = settings or StylizerSettings()
        self.checkpoint = style if isinstance(style, StyleCheckpoint) else load_style(style)
        self.runner = make_runner(self.checkpoint, self.settings.model)
        self.shading = _or(self.settings.shading, self.checkpoint.shading)
        self.canvas = _or(self.settings.canvas, self.checkpoint.canvas)
        self.palette = _palette(self.checkpoint, _or(self.settings.palette,
                                                     self.checkpoint.palette))
        # a kept face takes the painting's palette too (its own statistics followed), so
        # it does not show as the camera's bright patch in a dark painting
        self.face_palette = _palette(self.checkpoint, self.palette.amount) \
            if self.palette is not None else None
        self.stages = StageTimes()  # the pipeline hands in its own
        self.chain = CHAIN  # the steps, in order (engine/steps)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # a live stream repeats one size
        log.info("stylizer: style=%s arch=%s backend=%s device=%s dtype=%s channels_last=%s "
                 "scale=%s", self.name, self.checkpoint.arch, self.runner.backend, self.device,
                 self.dtype_name, self.channels_last, self.settings.scale)

    # what the runner runs on, as the stylizer's own
    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def dtype(self) -> torch.dtype:
        return self.runner.dtype

    @property
    def dtype_name(self) -> str:
        return self.runner.dtype_name

    @property
    def channels_last(self) -> bool:
        return self.runner.channels_last

    def restyled(self, name: str, mix: tuple[str, float] | None = None) -> Stylizer | None:
        """This stylizer painting style `name` of its own bank, optionally mixed with
        (other style, amount 0..1) of it: the bank is already in memory, so this is only a
        fold into a fresh copy of the network (milliseconds), no file read. None where the
        style is not in this style's bank (or the backend is not torch): load it instead."""
        if self.checkpoint.bank is None or self.settings.backend != "torch":
            return None
        checkpoint = bank_style(self.checkpoint.bank, name, mix)
        return None if checkpoint is None else Stylizer(checkpoint, self.settings)

    def set_keep_colors(self, on: bool) -> None:
        """Keep the input's colours from the next frame on (no rebuild: it is a last step)."""
        self.settings = dataclasses.replace(self.settings, keep_colors=bool(on))

    def set_keep_face(self, amount: float | None) -> None:
        """Let `amount` (0..1; None: the style's own) of faces show through from the next
        frame on (no rebuild: it is a last step)."""
        self.settings = dataclasses.replace(self.settings, keep_face=amount)

    @property
    def keep_face(self) -> float:
        """The keep-face amount in effect: the setting's, else the style's, else the
        settings' default."""
        amount = self.settings.keep_face
        if amount is not None:
            return amount
        if self.checkpoint.style.get("keep_face") is None:
            return self.settings.face_default
        return self.checkpoint.keep_face

    def set_scale(self, scale: float) -> None:
        """Change the internal scale; the network does not depend on it, so no rebuild."""
        self.settings = dataclasses.replace(self.settings, scale=scale)

    @property
    def name(self) -> str:
        return self.checkpoint.name

    def describe(self) -> dict:
        return {"style": self.name, "arch": self.checkpoint.arch, "backend": self.runner.backend,
                "device": str(self.device),
                "dtype": self.dtype_name, "channels_last": self.channels_last,
                "scale": self.settings.scale, "max_side": self.settings.max_side,
                "shading": self.shading, "canvas": self.canvas,
                "palette": self.palette.amount if self.palette else 0.0,
                "keep_colors": self.settings.keep_colors, "keep_face": self.keep_face}

    def scale_for(self, h: int, w: int) -> float:
        """The scale a frame of this size is stylised at (engine/steps/working.py)."""
        return working_scale(self._working, h, w)

    @torch.inference_mode()
    def stylize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Nx3xHxW float in [0, 1] on self.device -> same shape, float32, at the size given
        (scaling is `stylize`'s job)."""
        return self.runner.run_padded(x)

    def stylize(self, image: np.ndarray, blend: Blender | None = None,
                faces: FaceKeeper | None = None) -> np.ndarray:
        """HxWx3 uint8 RGB -> stylised HxWx3 uint8 RGB of the same size: the frame's chain
        (engine/steps: CHAIN), `begin` then `finish`.

        The network works at `scale_for` the frame's size, and so does every step around
        it, before the resize back. The temporal `blend`'s motion is tracked once and given
        to the steps that follow it (the canvas grain moves with it, the blend warps by
        it, faces move with it). `faces` follows the faces of a stream (engine/faces.py);
        without it, a frame is searched as a still picture.
        """
        return self.finish(self.begin(image, blend), blend, faces)

    @property
    def on_device(self) -> torch.device | None:
        """Where the chain runs: None for the host (numpy and OpenCV, a CPU's fastest),
        else the tensors' device (the network's: a GPU, or the CPU when asked with
        chain="torch")."""
        road = self.settings.chain
        if road == "opencv" or (road == "auto" and self.device.type == "cpu"):
            return None
        return self.device

    def begin(self, image: np.ndarray, blend: Blender | None = None) -> Painting:
        """The chain's first half, up to the network's output (working size, motion,
        canvas, network). The live pipeline runs it in one thread and `finish` in
        another, so the two halves of consecutive frames overlap; `blend` must see frames
        in order in each half."""
        check_image(image)
        h, w = image.shape[:2]
        work = Work(image, working_size(self._working, h, w), self.on_device, blend,
                    work=image)  # the working step replaces it where it resizes or uploads
        with torch.inference_mode():
            for step in self.chain:
                if step.half == "begin" and step.active(self, work):
                    self._timer.run(step, self, work)
        return work

    def finish(self, painting: Painting, blend: Blender | None = None,
               faces: FaceKeeper | None = None) -> np.ndarray:
        """The chain's second half: shading, palette, the blend, faces, colours, and the
        resize back; on the device road, then the one download."""
        work = painting
        work.blend, work.faces = blend, faces
        with torch.inference_mode():
            for step in self.chain:
                if step.half != "begin" and step.active(self, work):
                    self._timer.run(step, self, work)
            if work.device is None:
                return work.out
            with self.stages.time("download"):
                out = download(work.out)
        self._timer.flush(work)
        return out

    @property
    def _working(self) -> WorkingSettings:
        return WorkingSettings(self.settings.scale, self.settings.max_side)

    @property
    def _timer(self) -> StepTimer:
        return StepTimer(self.stages)

    def stylize_frame(self, frame: Frame) -> Frame:
        return frame.with_image(self.stylize(frame.image))


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _palette(checkpoint: StyleCheckpoint, amount: float) -> PaletteMatch | None:
    """The palette step for `amount` of the style's painting (its stored thumbnail)."""
    if amount <= 0.0:
        return None
    thumbnail = checkpoint.style.get("thumbnail")
    if thumbnail is None:
        log.warning("%s: no painting stored with the style, so no palette to match",
                    checkpoint.name)
        return None
    return PaletteMatch(np.ascontiguousarray(np.asarray(thumbnail, dtype=np.uint8)), amount)
