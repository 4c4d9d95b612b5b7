"""Training losses, each normalised so that weights do not depend on the VGG weights used.

Content and style distances are divided by the energy of their target, which makes
them invariant to the loss network's activation scale (a torchvision VGG and the
Caffe-convention VGG19 we ship differ by ~255x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamnst.engine.flow import inside_mask, warp


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


def sparse_noise(x: torch.Tensor, fraction: float, amount: float,
                 gen: torch.Generator) -> torch.Tensor:
    """x with `fraction` of its pixels shifted by uniform noise in [-amount, amount].

    de Berker & Rainy (2018): the network must give the same picture for both.
    """
    n, c, h, w = x.shape
    where = (torch.rand(n, 1, h, w, generator=gen) < fraction).to(x.dtype)
    noise = (torch.rand(n, c, h, w, generator=gen) * 2 - 1) * amount
    return (x + where.to(x.device) * noise.to(x.device)).clamp(0, 1)


def smooth_random_flow(n: int, h: int, w: int, max_shift: float, gen: torch.Generator,
                       grid: int = 4) -> torch.Tensor:
    """Nx2xHxW smooth synthetic flow: a random global shift plus a coarse random field."""
    coarse = (torch.rand(n, 2, grid, grid, generator=gen) * 2 - 1) * max_shift * 0.5
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    field = field.clamp(-max_shift * 0.5, max_shift * 0.5)  # bicubic overshoots
    shift = (torch.rand(n, 2, 1, 1, generator=gen) * 2 - 1) * max_shift * 0.5
    return field + shift


def motion_views(x: torch.Tensor, max_shift: float, noise: float,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A second view of x warped by a smooth random flow (plus slight noise).

    Returns (flow, x_moved, valid mask). Wang et al. 2020 (ReReVST): penalise
    |warp(S(x)) - S(warp(x))| where the warp is defined.
    """
    n, _, h, w = x.shape
    flow = smooth_random_flow(n, h, w, max_shift, gen).to(x.device)
    moved = warp(x, flow)
    moved = (moved + torch.randn(moved.shape, generator=gen).to(x.device) * noise).clamp(0, 1)
    return flow, moved, inside_mask(flow)


def motion_loss(y: torch.Tensor, y_moved: torch.Tensor, flow: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    diff = (warp(y.float(), flow) - y_moved.float()).abs() * mask
    return diff.sum() / (mask.sum() * y.shape[1]).clamp_min(1.0)


def stability_loss(y: torch.Tensor, y_noisy: torch.Tensor) -> torch.Tensor:
    """Output change caused by the input noise (gradients flow through both branches)."""
    return (y.float() - y_noisy.float()).abs().mean()
