"""Training losses, each normalised so that weights do not depend on the VGG weights used.

Content and style distances are divided by the energy of their target, which makes
them invariant to the loss network's activation scale (torchvision's VGG16 and
HED's Caffe-convention trunk differ by ~255x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..flow import inside_mask, warp


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


def _at_scale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """x in fp32 at 1/scale resolution (block averages)."""
    return F.avg_pool2d(x.float(), scale) if scale > 1 else x.float()


def colour_grams(x: torch.Tensor, scales: tuple[int, ...] = (1, 4)) -> list[torch.Tensor]:
    """Second moments of 3x3 RGB patches (plus a constant, so means count too) at each scale.

    The palette and local colour layout of an image, seen without the loss network: the
    HED-tuned VGG16 trunk mostly sees edges, so its Gram matrices let colour drift.
    """
    grams = []
    for k in scales:
        p = F.unfold(_at_scale(x, k), 3)  # N x 27 x positions
        p = torch.cat([p, torch.ones_like(p[:, :1])], 1)
        grams.append(p @ p.transpose(1, 2) / p.shape[2])
    return grams


def colour_loss(y: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
    """Distance of y's colour_grams to the painting's, each normalised by its energy."""
    total = torch.zeros((), device=y.device)
    for g, t in zip(colour_grams(y), targets, strict=True):
        t = t.expand_as(g)
        total = total + F.mse_loss(g, t) / t.pow(2).mean().clamp_min(1e-12)
    return total


PATCH_SIZE = 7
PATCH_SCALES = (1, 2, 4)


def patch_rows(x: torch.Tensor, scale: int, size: int = PATCH_SIZE) -> torch.Tensor:
    """Every size x size RGB patch of x (Nx3xHxW) at 1/scale resolution, one row each."""
    return F.unfold(_at_scale(x, scale), size).transpose(1, 2).reshape(-1, 3 * size * size)


def style_patches(style: torch.Tensor, gen: torch.Generator, keep: int = 32768
                  ) -> list[torch.Tensor]:
    """A fixed random sample of the painting's patches at each scale (the target)."""
    out = []
    for scale in PATCH_SCALES:
        rows = patch_rows(style, scale)
        pick = torch.randperm(rows.shape[0], generator=gen)[:keep]
        out.append(rows[pick.to(rows.device)])
    return out


def patch_loss(y: torch.Tensor, targets: list[torch.Tensor], gen: torch.Generator,
               directions: int = 64, sample: int = 16384) -> torch.Tensor:
    """Sliced Wasserstein distance between the batch's RGB patches and the painting's.

    Heitz et al. 2021 and Elnekave & Weiss 2022: project both patch sets on random
    directions and compare the sorted values, at three scales. Unlike Gram matrices of
    an edge-tuned VGG16 it matches the painting's colours and its local patterns as a
    whole distribution, so it does not ask for stripes. The batch is pooled: a crop of
    plain wall need not hold every colour of the painting. At most `sample` patch
    positions per scale are compared each step.
    """
    total = torch.zeros((), device=y.device)
    for scale, target in zip(PATCH_SCALES, targets, strict=True):
        rows = patch_rows(y, scale)
        if rows.shape[0] > sample:  # a random sample of positions: same distribution, cheaper
            rows = rows[torch.randperm(rows.shape[0], generator=gen)[:sample].to(y.device)]
        d = torch.randn(rows.shape[1], directions, generator=gen).to(y.device)
        d = d / d.norm(dim=0, keepdim=True)
        ours = (rows @ d).sort(0).values
        theirs = (target @ d).sort(0).values
        at = torch.linspace(0, theirs.shape[0] - 1, ours.shape[0], device=y.device).long()
        theirs = theirs[at]
        total = total + F.mse_loss(ours, theirs) / theirs.var(0).mean().clamp_min(1e-12)
    return total


def luma(x: torch.Tensor) -> torch.Tensor:
    """Nx3xHxW RGB -> Nx1xHxW luma with Rec. 601 weights (OpenCV's RGB2GRAY)."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True)


def luma_loss(y: torch.Tensor, x: torch.Tensor, block: int = 8) -> torch.Tensor:
    """Mean |difference| of the block-averaged luma of output and input.

    Keeps the frame's light and shade: a guard against the dark blobs that Gram losses
    grow on flat walls and table tops. Detail finer than `block` pixels and all hue stay
    free for the style.
    """
    return F.l1_loss(F.avg_pool2d(luma(y), block), F.avg_pool2d(luma(x), block))


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
