"""The losses that training, gatys and eval share, each normalised so that weights do not
depend on the VGG weights used.

Content and style distances are divided by the energy of their target, which makes
them invariant to the loss network's activation scale (a torchvision VGG and the
Caffe-convention VGG19 we ship differ by ~255x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gram(features: torch.Tensor) -> torch.Tensor:
    """NxCxHxW -> NxCxC Gram matrices, normalised by C*H*W, in fp32."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def content_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    out, target = out.float(), target.float()
    return F.mse_loss(out, target) / target.pow(2).mean().clamp_min(1e-8)


def style_loss(out_features: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor],
               layer_weights: dict[str, float]) -> torch.Tensor:
    total = torch.zeros((), device=next(iter(style_grams.values())).device)
    for name, target in style_grams.items():
        g = gram(out_features[name])
        t = target.expand_as(g)
        total = total + layer_weights.get(name, 1.0) * F.mse_loss(g, t) / t.pow(2).mean().clamp_min(
            1e-12)
    return total


def tv_loss(y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (y in [0,1])."""
    dx = (y[..., :, 1:] - y[..., :, :-1]).abs().mean()
    dy = (y[..., 1:, :] - y[..., :-1, :]).abs().mean()
    return dx + dy
