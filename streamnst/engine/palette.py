"""The painting's palette over the whole frame: the output's colour mean and spread moved
a share of the way to the painting's (the colour transfer of Reinhard et al. 2001, in
YCrCb rather than their l-alpha-beta, so that it is one affine map of RGB).

A style learnt in minutes (training/quick.py) paints the strokes but only part of the
colours: its network maps colours by content, so a room unlike its training frames keeps
more of its own. This step gives every frame the painting's palette, whatever is in it.

In a video the frame's statistics are followed slowly (FOLLOW), so a person walking in
does not shift the whole picture's colour at once, and a still scene gets one fixed map:
nothing here flickers. A single picture is matched on its own statistics.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

#: each channel's spread is scaled by at most this much, up or down: a grey frame must
#: not have its noise blown up into colour
MAX_GAIN = 2.0
#: the luma's spread is only ever narrowed: more contrast would sharpen whatever the
#: strokes flicker by as much (a dark, contrasty Turner tripled the warping error)
MAX_LUMA_GAIN = 1.0
#: the share of a new frame's statistics taken in per frame (about a second at 30 fps)
FOLLOW = 0.05

# OpenCV's YCrCb (BT.601, full range): ycc = T @ rgb + offset
_T = np.array([[0.299, 0.587, 0.114],
               [0.5, -0.587 * 0.5 / (1 - 0.299), -0.114 * 0.5 / (1 - 0.299)],
               [-0.299 * 0.5 / (1 - 0.114), -0.587 * 0.5 / (1 - 0.114), 0.5]])
_OFFSET = np.array([0.0, 128.0, 128.0])
_T_INV = np.linalg.inv(_T)


def moments(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> the mean and spread of Y, Cr and Cb (six numbers), at full size:
    a smaller copy would lose the strokes' share of the spread (0.15 ms at 640x360)."""
    mean, std = cv2.meanStdDev(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb))
    return np.concatenate([mean.ravel(), std.ravel()])


def transfer_matrix(own: np.ndarray, target: np.ndarray, amount: float) -> np.ndarray:
    """The 3x4 RGB affine map that moves colours with moments `own` `amount` (0-1) of the
    way to `target`: per YCrCb channel, x -> x + amount * (target mean + (x - own mean) *
    gain - x), with gain the spreads' ratio (capped at MAX_GAIN either way)."""
    gain = np.clip(target[3:] / np.maximum(own[3:], 1e-3), 1 / MAX_GAIN, MAX_GAIN)
    gain[0] = min(gain[0], MAX_LUMA_GAIN)
    scale = 1.0 - amount + amount * gain
    shift = amount * (target[:3] - gain * own[:3])
    # in YCrCb, ycc' = scale * ycc + shift; so rgb' = T^-1 (scale (T rgb + o) + shift - o)
    linear = _T_INV @ np.diag(scale) @ _T
    constant = _T_INV @ (scale * _OFFSET + shift - _OFFSET)
    return np.hstack([linear, constant[:, None]])


class PaletteMatch:
    """Moves each output toward a painting's palette; follows a video's statistics."""

    def __init__(self, painting: np.ndarray, amount: float) -> None:
        """`painting`: HxWx3 uint8 RGB (its thumbnail serves); `amount`: 0 to 1."""
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"palette amount must be between 0 and 1, got {amount}")
        self.target = moments(painting)
        self.amount = amount
        self._followed: np.ndarray | None = None
        self._followed_t: torch.Tensor | None = None  # the same, on the device road

    def __call__(self, styled: np.ndarray, follow: bool = False) -> np.ndarray:
        """`styled` (HxWx3 uint8 RGB) with the palette moved; `follow`: a video frame, whose
        statistics update the ones followed instead of replacing them."""
        own = moments(styled)
        if follow:
            if self._followed is None:
                self._followed = own
            else:
                self._followed = self._followed + FOLLOW * (own - self._followed)
            own = self._followed
        matrix = transfer_matrix(own, self.target, self.amount).astype(np.float32)
        return cv2.transform(styled, matrix)

    def on_tensor(self, styled: torch.Tensor, follow: bool = False) -> torch.Tensor:
        """`__call__` for a 1x3xHxW tensor in [0, 1], on its device: the moments, the
        followed statistics and the map stay there (no host copy, no sync)."""
        t = _tensors(styled.device)
        rgb = styled[0].reshape(3, -1) * 255.0
        ycc = t["T"] @ rgb + t["offset"][:, None]
        std, mean = torch.std_mean(ycc, dim=1, correction=0)
        own = torch.cat([mean, std])
        if follow:
            followed = self._followed_t
            if followed is None or followed.device != own.device:
                self._followed_t = own
            else:
                self._followed_t = followed + FOLLOW * (own - followed)
            own = self._followed_t
        target = torch.as_tensor(self.target, dtype=torch.float32).to(styled.device)
        gain = (target[3:] / own[3:].clamp_min(1e-3)).clamp(1 / MAX_GAIN, MAX_GAIN)
        gain = torch.cat([gain[:1].clamp_max(MAX_LUMA_GAIN), gain[1:]])
        scale = 1.0 - self.amount + self.amount * gain
        shift = self.amount * (target[:3] - gain * own[:3])
        linear = t["T_inv"] @ torch.diag(scale) @ t["T"]
        constant = t["T_inv"] @ (scale * t["offset"] + shift - t["offset"])
        out = linear @ styled[0].reshape(3, -1) + (constant / 255.0)[:, None]
        return out.clamp_(0.0, 1.0).reshape(styled.shape)


def _tensors(device: torch.device) -> dict[str, torch.Tensor]:
    """The YCrCb matrices as float32 tensors on `device` (cached per device)."""
    key = str(device)
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = {name: torch.as_tensor(value, dtype=torch.float32).to(device)
                           for name, value in (("T", _T), ("T_inv", _T_INV),
                                               ("offset", _OFFSET))}
    return _ON_DEVICE[key]


_ON_DEVICE: dict[str, dict[str, torch.Tensor]] = {}
