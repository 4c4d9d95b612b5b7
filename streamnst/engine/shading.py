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

#: Gaussian sigma of the "coarse" luminance, in pixels of the working frame: wider than
#: a brush stroke (a few pixels), narrower than the glow around a person.
SIGMA = 4.0
#: The coarse part is computed at this fraction of the size: a Gaussian this wide keeps
#: nothing a quarter-size grid cannot hold, and it is 10x cheaper than at full size.
_REDUCE = 4


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
