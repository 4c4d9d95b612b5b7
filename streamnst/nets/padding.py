"""Pad a batch to a network's stride (plus a reflected margin) and crop back."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def _pad_amounts(size: int, stride: int, margin: int) -> tuple[int, int]:
    total = size + 2 * margin
    extra = (-total) % stride
    before = margin + extra // 2
    return before, margin + extra - extra // 2


Pads = tuple[int, int, int, int]  # top, bottom, left, right


def padding_for(net: nn.Module, h: int, w: int) -> tuple[Pads, str]:
    """How far to pad an HxW input for `net` (to its stride, plus its reflected margin),
    and the mode: reflect, or replicate where the frame is too small to reflect."""
    inner = getattr(net, "module", net)  # a DistributedDataParallel wrapper's network
    return pads_for(getattr(inner, "STRIDE", 1), getattr(inner, "MARGIN", 0), h, w)


def pads_for(stride: int, margin: int, h: int, w: int) -> tuple[Pads, str]:
    """`padding_for` a network of this stride and margin."""
    top, bottom = _pad_amounts(h, stride, margin)
    left, right = _pad_amounts(w, stride, margin)
    mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
    return (top, bottom, left, right), mode


def run_padded(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run `net` on Nx3xHxW of any size: reflect-pad to its stride and margin, crop back."""
    return run_with_pads(net, x, padding_for(net, *x.shape[-2:]))


def run_with_pads(call: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  pads: tuple[Pads, str]) -> torch.Tensor:
    """`call` on x padded by `pads` (amounts and mode, as `padding_for` gives), cropped back."""
    h, w = x.shape[-2:]
    (top, bottom, left, right), mode = pads
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), mode=mode)
    return call(x)[..., top:top + h, left:left + w]
