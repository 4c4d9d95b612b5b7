"""Optimisation-based style transfer (Gatys et al. 2016) for images and videos, with the
temporal loss of Ruder et al. 2016: the reference our fast networks are compared with.

Video frames are written as PNGs to a work folder as they finish, so rerunning the
same command continues after the last finished frame; the video is assembled at the
end (audio kept). Losses, VGG19 network and flow are the ones training and metrics use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamnst.core.atomic import atomic_path
from streamnst.core.errors import InputError
from streamnst.engine.flow import FlowEstimator, consistency_mask, flow_to_tensor, warp
from streamnst.media.imageio import is_image_path, read_image, resize_max_side, write_image
from streamnst.media.tensors import image_to_tensor, tensor_to_image
from streamnst.media.video import VideoReader, open_writer
from streamnst.nets.losses import content_loss, gram, style_loss, tv_loss
from streamnst.nets.vgg import CONTENT_LAYER, RELU_INDEX, STYLE_LAYERS, VGGFeatures

log = logging.getLogger(__name__)
INITS = ("content", "random", "prev_warped")
OPTIMIZERS = ("lbfgs", "adam")


@dataclass(frozen=True)
class GatysSettings:
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 0.0
    temporal_weight: float = 50.0
    temporal: bool = True
    resize: int = 512  # longest side the optimisation runs at
    style_size: int | None = None  # longest side of the style image (default: resize)
    init: str = "prev_warped"  # for video frames after the first; the first uses content
    iterations: int = 100
    first_iterations: int = 200
    optimizer: str = "lbfgs"
    lr: float = 0.02  # adam only
    tolerance: float = 1e-4  # stop when the loss improves less than this (relative)
    patience: int = 10  # ... over this many iterations
    content_layers: tuple[str, ...] = (CONTENT_LAYER,)
    style_layers: tuple[str, ...] = STYLE_LAYERS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise InputError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.iterations < 1 or self.first_iterations < 1:
            raise InputError("iterations must be >= 1")
        if self.resize < 16:
            raise InputError("--resize must be at least 16 pixels")
        unknown = [n for n in (*self.content_layers, *self.style_layers) if n not in RELU_INDEX]
        if unknown:
            raise InputError(f"unknown VGG layers {unknown}; choose from {list(RELU_INDEX)}")

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.content_layers, *self.style_layers)))


IterCallback = Callable[[int, dict[str, float]], None]


class Gatys:
    def __init__(self, style_image: np.ndarray, vgg: VGGFeatures,
                 settings: GatysSettings | None = None, device: str | torch.device = "cpu"
                 ) -> None:
        self.settings = s = settings or GatysSettings()
        self.device = torch.device(device)
        self.vgg = vgg.to(self.device)
        missing = [n for n in s.layers if n not in vgg.layers]
        if missing:
            raise InputError(f"the loss network was built without layers {missing}")
        style = resize_max_side(style_image, s.style_size or s.resize)
        with torch.no_grad():
            feats = self.vgg(image_to_tensor(style, self.device))
        self.grams = {n: gram(feats[n]) for n in s.style_layers}
        self.flow = FlowEstimator(max_side=None, preset="medium")

    def _loss(self, x, content_feats, prior, mask) -> dict[str, torch.Tensor]:
        s = self.settings
        feats = self.vgg(x)
        terms = {
            "content": s.content_weight * sum(content_loss(feats[n], content_feats[n])
                                              for n in s.content_layers),
            "style": s.style_weight * style_loss(feats, self.grams,
                                                 dict.fromkeys(s.style_layers, 1.0)),
            "tv": s.tv_weight * tv_loss(x),
        }
        if prior is not None:
            # Ruder et al.: stay close to the warped previous result where it is reliable
            diff = (x - prior).pow(2).sum(1, keepdim=True) * mask
            terms["temporal"] = s.temporal_weight * diff.sum() / mask.sum().clamp_min(1.0)
        terms["total"] = sum(terms.values())
        return terms

    def optimise(self, content: np.ndarray, init: torch.Tensor, iterations: int,
                 prior: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                 on_iter: IterCallback | None = None) -> np.ndarray:
        """Minimise the losses from `init` (1x3xHxW in [0,1]) for one frame.

        One iteration is one optimiser step (an L-BFGS step may evaluate the loss several
        times in its line search). `last_history` holds the total loss at each iterate and
        `stop_reason` says why the loop ended.
        """
        s = self.settings
        c = image_to_tensor(content, self.device)
        with torch.no_grad():
            content_feats = self.vgg(c)
        x = init.detach().clone().contiguous().requires_grad_(True)
        history: list[float] = []
        at_iterate: dict[str, torch.Tensor] = {}

        def closure():
            opt.zero_grad()
            terms = self._loss(x, content_feats, prior, mask)
            terms["total"].backward()
            if not at_iterate:  # the first evaluation of a step is at the iterate itself
                at_iterate.update(terms)
            return terms["total"]

        if s.optimizer == "lbfgs":
            # no clamping between steps: moving x behind L-BFGS's back breaks its curvature
            # pairs (the old loop stalled after a few steps); its own tolerances are off
            # because energy-normalised losses have tiny pixel gradients
            opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=50,
                                    line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                    tolerance_change=0.0)
        else:
            opt = torch.optim.Adam([x], lr=s.lr)
        self.stop_reason = f"ran all {iterations} iterations"
        for _ in range(iterations):
            at_iterate.clear()
            opt.step(closure)
            value = float(at_iterate["total"].detach())
            history.append(value)
            if on_iter:
                on_iter(len(history), {k: float(v.detach()) for k, v in at_iterate.items()})
            if s.optimizer == "adam":
                with torch.no_grad():
                    x.clamp_(0, 1)
            if not np.isfinite(value):
                self.stop_reason = f"stopped at iteration {len(history)}: the loss is {value}"
                break
            if len(history) > s.patience:
                old = history[-1 - s.patience]
                if old - value < s.tolerance * abs(old):
                    self.stop_reason = (f"converged at iteration {len(history)}: the loss fell "
                                        f"less than {s.tolerance:g} (relative) over the last "
                                        f"{s.patience} iterations")
                    break
        if self.stop_reason.startswith("stopped"):
            log.warning("gatys: %s", self.stop_reason)
        self.last_history = history
        return tensor_to_image(x.detach().clamp(0, 1))

    def stylize_image(self, content: np.ndarray, on_iter: IterCallback | None = None
                      ) -> np.ndarray:
        s = self.settings
        content = resize_max_side(content, s.resize)
        c = image_to_tensor(content, self.device)
        init = c if s.init != "random" else self._noise(c)
        return self.optimise(content, init, s.first_iterations, on_iter=on_iter)

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.settings.seed)
        return torch.rand(like.shape, generator=gen).to(self.device)

    def next_frame(self, content: np.ndarray, prev_content: np.ndarray | None,
                   prev_out: np.ndarray | None, on_iter: IterCallback | None = None
                   ) -> np.ndarray:
        """One video frame; `prev_*` (already at the working size) carry the temporal term."""
        s = self.settings
        content = resize_max_side(content, s.resize)
        c = image_to_tensor(content, self.device)
        if prev_out is None or prev_content is None:
            init = c if s.init != "random" else self._noise(c)
            return self.optimise(content, init, s.first_iterations, on_iter=on_iter)
        # flow from the current frame to the previous one brings the previous result here
        f_cp = flow_to_tensor(self.flow(content, prev_content), self.device)
        f_pc = flow_to_tensor(self.flow(prev_content, content), self.device)
        mask = consistency_mask(f_cp, f_pc)
        warped = warp(image_to_tensor(prev_out, self.device), f_cp)
        if s.init == "prev_warped":
            init = mask * warped + (1 - mask) * c
        elif s.init == "random":
            init = self._noise(c)
        else:
            init = c
        prior = warped if s.temporal else None
        return self.optimise(content, init, s.iterations, prior, mask, on_iter)


def frames_dir(output: str | os.PathLike) -> Path:
    out = Path(output)
    return out.parent / f"{out.stem}.frames"


def render_gatys(content_path: str | os.PathLike, output: str | os.PathLike, gatys: Gatys,
                 *, max_frames: int | None = None,
                 on_frame: Callable[[int, int | None, bool], None] | None = None,
                 on_iter: IterCallback | None = None) -> tuple[Path, int, int]:
    """Render an image or a video; returns (output, frames rendered now, frames reused)."""
    content_path, output = Path(content_path), Path(output)
    if is_image_path(content_path):
        write_image(output, gatys.stylize_image(read_image(content_path), on_iter))
        return output, 1, 0
    work = frames_dir(output)
    work.mkdir(parents=True, exist_ok=True)
    done = reused = 0
    prev_c = prev_o = None
    with VideoReader(content_path) as reader:
        fps, has_audio, total = reader.fps, reader.has_audio, reader.frame_count
        if max_frames:
            total = min(total or max_frames, max_frames)
        for i, frame in enumerate(reader):
            if max_frames is not None and i >= max_frames:
                break
            content = resize_max_side(frame, gatys.settings.resize)
            png = work / f"frame_{i:06d}.png"
            if png.exists():  # finished in an earlier run: resume after it
                out = read_image(png)
                reused += 1
            else:
                out = gatys.next_frame(content, prev_c, prev_o, on_iter)
                write_image(png, out)
                done += 1
            prev_c, prev_o = content, out
            if on_frame:
                on_frame(i + 1, total, png.exists() and done == 0)
    count = done + reused
    if count == 0:
        raise InputError(f"{content_path}: no frames could be decoded")
    with atomic_path(output) as tmp:
        writer = open_writer(tmp, fps, audio_from=content_path if has_audio else None)
        try:
            for i in range(count):
                writer.write(read_image(work / f"frame_{i:06d}.png"))
        finally:
            writer.close()
    return output, done, reused
