"""The stabilisation terms of training: the network must give the same picture for a
slightly noisy input (de Berker & Rainy 2018) and a picture that moves with its input
(Wang et al. 2020). Training only, so they live here and not with the shared losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamnst.engine.flow import inside_mask, warp


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
