"""Pad a batch to a network's stride (plus a reflected margin) and crop back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pad_amounts(size: int, stride: int, margin: int) -> tuple[int, int]:
    total = size + 2 * margin
    extra = (-total) % stride
    before = margin + extra // 2
    return before, margin + extra - extra // 2


def run_padded(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run `net` on Nx3xHxW of any size: reflect-pad to its stride and margin, crop back."""
    inner = getattr(net, "module", net)  # a DistributedDataParallel wrapper's network
    stride = getattr(inner, "STRIDE", 1)
    margin = getattr(inner, "MARGIN", 0)
    h, w = x.shape[-2:]
    top, bottom = _pad_amounts(h, stride, margin)
    left, right = _pad_amounts(w, stride, margin)
    if top or bottom or left or right:
        # reflect needs pad < size; replicate covers tiny inputs
        mode = "reflect" if max(top, bottom) < h and max(left, right) < w else "replicate"
        x = F.pad(x, (left, right, top, bottom), mode=mode)
    y = net(x)
    return y[..., top:top + h, left:left + w]
