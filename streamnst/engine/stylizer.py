"""The one class every tool uses to turn RGB uint8 frames into stylised ones.

It is the only place where frames become tensors and back (the frame contract).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from streamnst.core.devices import autocast, parse_dtype, pick_device
from streamnst.core.errors import InputError
from streamnst.core.frame import Frame, check_image
from streamnst.core.stages import StageTimes
from streamnst.engine.canvas import add_canvas
from streamnst.engine.colours import keep_colors
from streamnst.engine.faces import FaceKeeper, keep_face, still_mask
from streamnst.engine.shading import keep_shading
from streamnst.engine.temporal import Blender
from streamnst.media.imageio import resize_to
from streamnst.media.tensors import image_to_tensor, tensor_to_image
from streamnst.nets import UNet, run_padded
from streamnst.nets.checkpoint_io import MAX_CANVAS, StyleCheckpoint, bank_style, load_style
from streamnst.nets.padding import padding_for

__all__ = ["Stylizer", "StylizerSettings", "image_to_tensor", "tensor_to_image"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StylizerSettings:
    """What the model depends on; changing any of these rebuilds the network."""

    device: str = "auto"
    dtype: str = "auto"
    channels_last: str = "auto"  # auto | on | off
    scale: float = 1.0  # stylise at this fraction of the working size, resize back
    # cap on the longer side of the working size (a frame's own size by default):
    # cost grows with pixels, and the brush strokes keep the size they were trained at
    max_side: int | None = None
    threads: int | None = None
    backend: str = "torch"  # torch | onnx (ONNX Runtime, fp32)
    # how much of the input's broad light and shade to give back (engine/shading.py);
    # None: the amount stored with the style
    shading: float | None = None
    # the grain (levels of 255) the network paints flat regions from (engine/canvas.py);
    # None: the amount the style was trained with
    canvas: float | None = None
    # the input's colours with the painting's light and strokes (engine/colours.py)
    keep_colors: bool = False
    # how much of a person's own face shows through, 0..1 (engine/faces.py); None: the
    # amount stored with the style
    keep_face: float | None = None

    def __post_init__(self) -> None:
        if not 0.1 <= self.scale <= 1.0:
            raise InputError(f"scale must be between 0.1 and 1.0, got {self.scale}")
        if self.channels_last not in ("auto", "on", "off"):
            raise InputError(f"channels_last must be auto, on or off, got {self.channels_last!r}")
        if self.max_side is not None and self.max_side < 16:
            raise InputError(f"max side must be at least 16 pixels, got {self.max_side}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.shading is not None and not 0.0 <= self.shading <= 1.0:
            raise InputError(f"shading must be between 0 and 1, got {self.shading}")
        if self.canvas is not None and not 0.0 <= self.canvas <= MAX_CANVAS:
            raise InputError(f"canvas must be between 0 and {MAX_CANVAS:g}, got {self.canvas}")
        if self.keep_face is not None and not 0.0 <= self.keep_face <= 1.0:
            raise InputError(f"keep-face must be between 0 and 1, got {self.keep_face}")
        if self.backend not in ("torch", "onnx"):
            raise InputError(f"backend must be torch or onnx, got {self.backend!r}")


class Stylizer:
    """Stylise frames with one style network on the best available device."""

    def __init__(self, style: str | os.PathLike | StyleCheckpoint,
                 settings: StylizerSettings | None = None) -> None:
        self.settings = settings or StylizerSettings()
        self.checkpoint = style if isinstance(style, StyleCheckpoint) else load_style(style)
        s = self.settings
        if s.threads:
            torch.set_num_threads(s.threads)
        self.device = pick_device(s.device)
        self.shading = s.shading if s.shading is not None else self.checkpoint.shading
        self.canvas = s.canvas if s.canvas is not None else self.checkpoint.canvas
        self.dtype = parse_dtype(s.dtype, self.device)
        self.native = False  # weights in self.dtype (else fp32 weights under autocast)
        self.stages = StageTimes()  # the pipeline hands in its own
        if s.backend == "onnx":
            from streamnst.nets.onnx_io import OnnxModel, export_bytes

            self.dtype = torch.float32  # the exported graph is fp32
            self.model = OnnxModel(export_bytes(self.checkpoint), self.device, s.threads)
            want_cl = False
        else:
            model = self._folded(self.checkpoint.model)
            # channels_last speeds U-Nets 1.5-2x on CPU but slows reflection-padded nets
            want_cl = {"on": True, "off": False}.get(s.channels_last, isinstance(model, UNet))
            # a U-Net (no norms left after fusing) runs in bf16/fp16 weights outright:
            # autocast's casts before and after every op were a sixth of its time
            if isinstance(model, UNet) and self.dtype != torch.float32:
                model = model.to(self.dtype)
                self.native = True
        self.channels_last = want_cl
        self.memory_format = torch.channels_last if want_cl else torch.contiguous_format
        if s.backend == "torch":
            self.model = model.to(self.device, memory_format=self.memory_format)
        log.info("stylizer: style=%s arch=%s backend=%s device=%s dtype=%s channels_last=%s "
                 "scale=%s", self.name, self.checkpoint.arch, s.backend, self.device,
                 self.dtype_name, want_cl, s.scale)

    def _folded(self, net: torch.nn.Module) -> torch.nn.Module:
        """An eval copy of `net` with its batch norms folded into the convs."""
        model = copy.deepcopy(net).eval()
        if hasattr(model, "fuse"):
            model.fuse()
        return model

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
        """The keep-face amount in effect: the setting's, else the style's."""
        amount = self.settings.keep_face
        return self.checkpoint.keep_face if amount is None else amount

    def set_scale(self, scale: float) -> None:
        """Change the internal scale; the network does not depend on it, so no rebuild."""
        self.settings = dataclasses.replace(self.settings, scale=scale)

    @property
    def name(self) -> str:
        return self.checkpoint.name

    @property
    def dtype_name(self) -> str:
        return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.dtype]

    def describe(self) -> dict:
        return {"style": self.name, "arch": self.checkpoint.arch, "backend": self.settings.backend,
                "device": str(self.device),
                "dtype": self.dtype_name, "channels_last": self.channels_last,
                "scale": self.settings.scale, "max_side": self.settings.max_side,
                "shading": self.shading, "canvas": self.canvas,
                "keep_colors": self.settings.keep_colors, "keep_face": self.keep_face}

    def scale_for(self, h: int, w: int) -> float:
        """The scale a frame of this size is stylised at: `scale` of the working size, which
        is the frame's size capped by `max_side` (so a smaller scale always saves work)."""
        cap = self.settings.max_side
        return self.settings.scale * min(1.0, 1.0 if cap is None else cap / max(h, w))

    @torch.inference_mode()
    def stylize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Nx3xHxW float in [0, 1] on self.device -> same shape, float32, at the size given
        (scaling is `stylize`'s job)."""
        return self._forward(x, padded=False)

    def _forward(self, x: torch.Tensor, padded: bool) -> torch.Tensor:
        """The network on x; `padded`: x is already padded for it (no padding, no crop)."""
        if self.native:
            x = x.to(self.dtype)
        x = x.contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype, enabled=not self.native):
            y = self.model(x) if padded else run_padded(self.model, x)
        return y.float()

    def _to_padded_tensor(self, work: np.ndarray) -> tuple[torch.Tensor, int, int]:
        """The frame padded for the network as uint8, then a tensor: the same reflection
        as `run_padded`'s, in OpenCV on bytes 30x faster than F.pad on a bf16 tensor (1.3
        ms a frame at 640x360, a tenth of the network's time). Returns the tensor and the
        top and left padding to crop the output by."""
        h, w = work.shape[:2]
        (top, bottom, left, right), mode = padding_for(self.model, h, w)
        if top or bottom or left or right:
            border = cv2.BORDER_REFLECT_101 if mode == "reflect" else cv2.BORDER_REPLICATE
            work = cv2.copyMakeBorder(work, top, bottom, left, right, border)
        x = image_to_tensor(work, self.device, self.dtype if self.native else torch.float32)
        return x, top, left

    def stylize(self, image: np.ndarray, blend: Blender | None = None,
                faces: FaceKeeper | None = None) -> np.ndarray:
        """HxWx3 uint8 RGB -> stylised HxWx3 uint8 RGB of the same size.

        The network works at `scale_for` the frame's size. The canvas grain, shading,
        the temporal `blend` and keeping faces run at that working size too, before the
        resize back, so a scaled or capped frame pays for them at that size; the blend
        carries the grain along with the motion. `faces` follows the faces of a stream
        (engine/faces.py); without it, a frame is searched as a still picture.
        """
        check_image(image)
        h, w = image.shape[:2]
        s = self.scale_for(h, w)
        work = image
        timed = self.stages.time
        if s < 1.0:
            with timed("resize"):
                work = resize_to(image, (max(1, round(w * s)), max(1, round(h * s))))
        with torch.inference_mode():
            if self.canvas > 0.0:
                with timed("canvas"):  # to the network only: shading and the blend see work
                    grained = blend.canvas(work, self.canvas) if blend is not None \
                        else add_canvas(work, self.canvas)
            else:
                grained = work
            with timed("to_tensor"):
                x, top, left = self._to_padded_tensor(grained)
            with timed("network"):
                y = self._forward(x, padded=True)
                wh, ww = work.shape[:2]
                y = y[..., top:top + wh, left:left + ww]
                if self.device.type == "cuda":
                    torch.cuda.synchronize()  # else the GPU's time shows up in from_tensor
            with timed("from_tensor"):
                out = tensor_to_image(y)
        if self.shading > 0.0:
            with timed("shading"):
                out = keep_shading(work, out, self.shading)
        if blend is not None:
            out = blend(work, out)
        if self.keep_face > 0.0:  # after the blend too: its memory stays all painting
            with timed("faces"):
                motion = blend.last_motion if blend is not None else None
                size = work.shape[:2]  # faces are searched for at the frame's own size
                mask = faces.mask(image, size, motion) if faces is not None \
                    else still_mask(image, size)
                out = keep_face(work, out, mask, self.keep_face)
        if self.settings.keep_colors:  # after the blend: the output's colours are exactly
            with timed("colours"):      # the input's, whatever the blend carried over
                out = keep_colors(work, out)
        if work is not image:
            with timed("resize"):
                out = resize_to(out, (w, h))
        return out

    def stylize_frame(self, frame: Frame) -> Frame:
        return frame.with_image(self.stylize(frame.image))
