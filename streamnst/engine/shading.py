"""Give a stylised frame the input's broad light and shade back.

Style networks trained with a strong style loss paint a bright rim a few pixels wide
around people and objects, and flatten a face's shading. Both live in the coarse part of
the luminance. This step swaps the output's coarse luminance for the input's, rescaled
to the output's own mean and spread so the style's tonal range stays; the strokes (the
fine part) and the colours stay as the network painted them.

Adding the same amount to R, G and B moves luma (BT.601) by exactly that amount and
leaves both chroma channels as they were, so no colour-space round trip is needed.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: Gaussian sigma of the "coarse" luminance, in pixels of the working frame: wider than
#: a brush stroke (a few pixels), narrower than the glow around a person.
SIGMA = 4.0
#: The coarse part is computed at this fraction of the size: a Gaussian this wide keeps
#: nothing a quarter-size grid cannot hold, and it is 10x cheaper than at full size.
_REDUCE = 4
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # BT.601, as COLOR_RGB2GRAY


def _coarse_luma(image: np.ndarray, size: tuple[int, int], sigma: float) -> np.ndarray:
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(luma, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.GaussianBlur(small, (0, 0), sigma / _REDUCE)


def keep_shading(frame: np.ndarray, styled: np.ndarray, amount: float,
                 sigma: float = SIGMA) -> np.ndarray:
    """HxWx3 uint8 RGB input and its stylised twin (same size) -> `styled` with `amount`
    (0 to 1) of its coarse luminance replaced by the input's. About 1 ms at 640x360."""
    if amount <= 0.0:
        return styled
    if frame.shape != styled.shape:
        raise ValueError(f"shapes differ: {frame.shape} and {styled.shape}")
    h, w = styled.shape[:2]
    size = (max(1, w // _REDUCE), max(1, h // _REDUCE))
    coarse_in = _coarse_luma(frame, size, sigma)
    coarse_out = _coarse_luma(styled, size, sigma)
    mean_in, std_in = cv2.meanStdDev(coarse_in)
    mean_out, std_out = cv2.meanStdDev(coarse_out)
    gain = float(std_out[0, 0]) / (float(std_in[0, 0]) + 1e-3)
    target = (coarse_in - float(mean_in[0, 0])) * gain + float(mean_out[0, 0])
    delta = cv2.resize(amount * (target - coarse_out), (w, h), interpolation=cv2.INTER_LINEAR)
    # saturating add with rounding, the same delta on every channel
    return cv2.add(styled, cv2.merge([delta, delta, delta]), dtype=cv2.CV_8U)


def _gaussian_1d(sigma: float, device: torch.device) -> torch.Tensor:
    """OpenCV's kernel for a float image and this sigma: 2*round(4 sigma)+1 taps."""
    radius = max(1, round(sigma * 4 * 2 + 1) // 2)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _coarse_luma_tensor(image: torch.Tensor, size: tuple[int, int],
                        sigma: float) -> torch.Tensor:
    luma = (image * _LUMA.to(image.device)).sum(1, keepdim=True)
    small = F.interpolate(luma, size=size, mode="area")
    k = _gaussian_1d(sigma / _REDUCE, image.device)
    r = k.numel() // 2
    mode = "reflect" if min(size) > r else "replicate"  # OpenCV's default border
    small = F.conv2d(F.pad(small, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(small, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))


def keep_shading_tensor(frame: torch.Tensor, styled: torch.Tensor, amount: float,
                        sigma: float = SIGMA) -> torch.Tensor:
    """`keep_shading` on 1x3xHxW tensors in [0, 1], on their device (no host copy)."""
    if amount <= 0.0:
        return styled
    h, w = styled.shape[-2:]
    size = (max(1, h // _REDUCE), max(1, w // _REDUCE))
    coarse_in = _coarse_luma_tensor(frame, size, sigma)
    coarse_out = _coarse_luma_tensor(styled, size, sigma)
    std_in, mean_in = torch.std_mean(coarse_in, correction=0)
    std_out, mean_out = torch.std_mean(coarse_out, correction=0)
    gain = std_out / (std_in + 1e-3 / 255.0)
    target = (coarse_in - mean_in) * gain + mean_out
    delta = F.interpolate(amount * (target - coarse_out), size=(h, w), mode="bilinear",
                          align_corners=False)
    return (styled + delta).clamp_(0.0, 1.0)
