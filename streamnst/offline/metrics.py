"""Temporal consistency and style metrics for stylised videos.

Warping error (Lai et al. 2018): for each consecutive pair, optical flow is computed
on the ORIGINAL frames in both directions; the next stylised frame is warped back
onto the current one and the squared RGB difference (values in [0, 1], summed over
channels) is averaged over pixels that are neither occluded nor on motion
boundaries. The same measure on the original video is the floor that flow errors,
noise and lighting impose; the ratio of the two is what a stable filter minimises.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from streamnst.core.errors import InputError
from streamnst.core.frame import check_image
from streamnst.engine.flow import FlowEstimator, consistency_mask, flow_to_tensor, warp
from streamnst.media.tensors import image_to_tensor
from streamnst.media.video import VideoReader


def _t(image: np.ndarray) -> torch.Tensor:
    return image_to_tensor(image, torch.device("cpu"))


def pair_warping_error(cur: np.ndarray, nxt: np.ndarray, mask: torch.Tensor,
                       flow_cn: torch.Tensor) -> float:
    """Masked mean of ||cur - warp(nxt, flow cur->next)||^2 (RGB in [0,1])."""
    warped = warp(_t(nxt), flow_cn)
    sq = (_t(cur) - warped).pow(2).sum(1, keepdim=True)
    valid = mask.sum()
    return float((sq * mask).sum() / valid) if valid > 0 else float("nan")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (how near one backend's output
    is to another's)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def laplacian_variance(image: np.ndarray) -> float:
    """Sharpness: variance of the Laplacian of the grey image (higher is sharper)."""
    gray = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def structure_kept(original: np.ndarray, stylized: np.ndarray, sigma_at_512: float = 4.0
                   ) -> float:
    """How much of the scene's layout survives: the correlation of the Gaussian-blurred
    luminance of input and output (the blur, sigma_at_512 px at 512 px wide, removes the
    brushwork and keeps the shapes). 1: the same light and dark masses."""
    if original.shape != stylized.shape:
        raise InputError("structure_kept needs the input and the output at one size")
    sigma = sigma_at_512 * max(original.shape[:2]) / 512.0

    def blurred(image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.GaussianBlur(grey, (0, 0), sigma).ravel()

    a, b = blurred(original), blurred(stylized)
    if a.std() < 1e-6 or b.std() < 1e-6:
        return 0.0  # a flat picture keeps no structure (and has no correlation)
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class WarpingReport:
    ewarp_stylized: float
    ewarp_original: float
    ratio: float
    frames: int
    sharpness_stylized: float
    sharpness_original: float
    valid_fraction: float
    # the ratio the first stylised frame would score held still: on a clip with little
    # motion, what textured output costs under the flow's sub-pixel noise (warping a
    # textured picture blurs it), not flicker; a smooth output scores near 1
    frozen_ratio: float = float("nan")
    per_frame_stylized: list[float] = field(default_factory=list)
    per_frame_original: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        keys = ("ewarp_stylized", "ewarp_original", "ratio", "frozen_ratio", "frames",
                "sharpness_stylized", "sharpness_original", "valid_fraction")
        return {k: getattr(self, k) for k in keys}


def pair_flow(est: FlowEstimator, cur: np.ndarray, nxt: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The flow cur->next of two ORIGINAL frames and the mask of the pixels it can be
    trusted at (neither occluded nor on a motion boundary): what a warping error is
    measured over."""
    f_cn = flow_to_tensor(est(cur, nxt))
    f_nc = flow_to_tensor(est(nxt, cur))
    return f_cn, consistency_mask(f_cn, f_nc)


def _to_size(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    check_image(stylized, "stylised frame")
    check_image(original, "original frame")
    if stylized.shape != original.shape:
        stylized = cv2.resize(stylized, (original.shape[1], original.shape[0]),
                              interpolation=cv2.INTER_AREA)
    return stylized


def warping_errors(stylized: Iterable[np.ndarray], original: Iterable[np.ndarray],
                   flow_max_side: int | None = 640) -> WarpingReport:
    """Warping error of `stylized` frames, and of `original` frames, over the same masks."""
    est = FlowEstimator(flow_max_side, preset="medium")
    per_s, per_o, per_frozen, sharp_s, sharp_o, valid = [], [], [], [], [], []
    prev = first = None
    frames = 0
    for s_img, o_img in zip(stylized, original, strict=False):
        s_img = _to_size(s_img, o_img)
        frames += 1
        sharp_s.append(laplacian_variance(s_img))
        sharp_o.append(laplacian_variance(o_img))
        if prev is not None:
            ps, po = prev
            f_cn, mask = pair_flow(est, po, o_img)
            valid.append(float(mask.mean()))
            per_s.append(pair_warping_error(ps, s_img, mask, f_cn))
            per_o.append(pair_warping_error(po, o_img, mask, f_cn))
            per_frozen.append(pair_warping_error(first, first, mask, f_cn))
        first = s_img if first is None else first
        prev = (s_img, o_img)
    if frames < 2:
        raise InputError("warping error needs at least two frames")
    es, eo = float(np.nanmean(per_s)), float(np.nanmean(per_o))
    frozen = float(np.nanmean(per_frozen))
    inf = float("inf")
    return WarpingReport(es, eo, es / eo if eo > 0 else inf, frames, float(np.mean(sharp_s)),
                         float(np.mean(sharp_o)), float(np.mean(valid)),
                         frozen / eo if eo > 0 else inf, per_s, per_o)


class WarpReference:
    """A short original clip with its flows and masks computed once, to score many
    stylisations of it (a training run checking its own steadiness now and then): the
    same warping-error ratio as warping_errors, without the flows each time."""

    def __init__(self, original: list[np.ndarray], flow_max_side: int | None = 640) -> None:
        if len(original) < 2:
            raise InputError("a warp reference needs at least two frames")
        est = FlowEstimator(flow_max_side, preset="medium")
        self.frames = original
        self.pairs = [pair_flow(est, original[i], original[i + 1])
                      for i in range(len(original) - 1)]
        self.error_original = self._error(original)

    def _error(self, frames: list[np.ndarray]) -> float:
        return float(np.nanmean([pair_warping_error(frames[i], frames[i + 1], mask, flow)
                                 for i, (flow, mask) in enumerate(self.pairs)]))

    def ratio(self, stylized: list[np.ndarray]) -> float:
        """The warping error of `stylized` (one per reference frame) over the original's."""
        if len(stylized) != len(self.frames):
            raise InputError(f"{len(stylized)} stylised frames for a {len(self.frames)}-frame "
                             "reference")
        error = self._error([_to_size(s, o) for s, o in zip(stylized, self.frames, strict=True)])
        return error / self.error_original if self.error_original > 0 else float("inf")


STILL_LEVELS = 1.0  # an input pixel that changed less than this (of 255) did not move
JUMP_LEVELS = 8.0  # an output change this large is visible


def still_flicker(frames: list[np.ndarray], outputs: list[np.ndarray]) -> dict:
    """Flicker with no flow involved: at pixels whose input changed by under STILL_LEVELS
    from the frame before, the output's mean change (levels of 255 per frame) and the share
    of those pixels whose output jumped by more than JUMP_LEVELS (visible sparkles)."""
    changes, jumps, shares = [], [], []
    for i in range(1, min(len(frames), len(outputs))):
        diff = np.abs(frames[i].astype(np.float32) - frames[i - 1]).mean(axis=2)
        still = diff < STILL_LEVELS
        if not still.any():
            continue
        change = np.abs(outputs[i].astype(np.float32) - outputs[i - 1]).mean(axis=2)[still]
        changes.append(float(change.mean()))
        jumps.append(float((change > JUMP_LEVELS).mean()))
        shares.append(float(still.mean()))
    nan = float("nan")
    return {"still_change": float(np.mean(changes)) if changes else nan,
            "still_jumps": float(np.mean(jumps)) if jumps else nan,
            "still_share": float(np.mean(shares)) if shares else 0.0}


def read_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    with VideoReader(path) as reader:
        for i, image in enumerate(reader):
            if max_frames is not None and i >= max_frames:
                return
            yield image


def lab_moments(image: np.ndarray) -> np.ndarray:
    """Mean and spread of L*, a* and b* (CIE Lab): the palette in six numbers."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    return np.concatenate([lab.mean(axis=0), lab.std(axis=0)])


def colour_distance(image: np.ndarray, painting_moments: np.ndarray) -> float:
    """Euclidean distance between an image's Lab moments and a painting's."""
    return float(np.linalg.norm(lab_moments(image) - painting_moments))


def style_distances(stylized: Iterable[np.ndarray], original: Iterable[np.ndarray],
                    style_image: np.ndarray, vgg, every: int = 5, max_side: int = 256) -> dict:
    """Mean Gram distance to the style image and content distance to the original frames,
    normalised like the training losses (so numbers are comparable with them): style over
    the VGG's style layers, content at its content layer. Also the palette's distance to
    the painting (Lab moments) for the stylised and for the original frames."""
    from streamnst.media.imageio import resize_max_side
    from streamnst.nets.losses import content_loss, gram, style_loss
    from streamnst.nets.vgg import CONTENT_LAYER, STYLE_LAYERS

    layers = [n for n in STYLE_LAYERS if n in vgg.layers] or list(vgg.layers)
    content = CONTENT_LAYER if CONTENT_LAYER in vgg.layers else vgg.layers[-1]
    with torch.no_grad():
        s_feats = vgg(_t(resize_max_side(style_image, max_side)))
        grams = {k: gram(s_feats[k]) for k in layers}
        style_d, content_d, colour_s, colour_o = [], [], [], []
        palette = lab_moments(style_image)
        for i, (s_img, o_img) in enumerate(zip(stylized, original, strict=False)):
            if i % every:
                continue
            colour_s.append(colour_distance(s_img, palette))
            colour_o.append(colour_distance(o_img, palette))
            fs = vgg(_t(resize_max_side(s_img, max_side)))
            fo = vgg(_t(resize_max_side(o_img, max_side)))
            style_d.append(float(style_loss(fs, grams, dict.fromkeys(layers, 1.0))))
            content_d.append(float(content_loss(fs[content], fo[content])))
    return {"style_distance": float(np.mean(style_d)),
            "content_distance": float(np.mean(content_d)),
            "colour_distance": float(np.mean(colour_s)),
            "colour_distance_original": float(np.mean(colour_o)),
            "style_frames": len(style_d)}


def plot_per_frame(report: WarpingReport, path: str | os.PathLike) -> None:
    """A small line chart (PNG) of both per-frame warping errors, drawn with OpenCV."""
    from streamnst.media.imageio import write_image

    w, h, pad = 800, 360, 50
    img = np.full((h, w, 3), 255, np.uint8)
    series = [(report.per_frame_stylized, (200, 40, 40)),
              (report.per_frame_original, (40, 40, 200))]
    top = max(max(np.nan_to_num(s)) for s, _ in series) or 1.0
    n = max(len(report.per_frame_stylized), 2)
    cv2.rectangle(img, (pad, pad // 2), (w - pad // 2, h - pad), (0, 0, 0), 1)
    for values, colour in series:
        pts = [(int(pad + i * (w - 1.5 * pad) / (n - 1)),
                int(h - pad - np.nan_to_num(v) / top * (h - 1.5 * pad)))
               for i, v in enumerate(values)]
        cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2)
    cv2.putText(img, f"warping error per frame pair (max {top:.4f}); red: stylised "
                f"{report.ewarp_stylized:.4f}, blue: original {report.ewarp_original:.4f}",
                (pad, h - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    write_image(path, img)
