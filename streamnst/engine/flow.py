"""Optical flow, warping and occlusion masks: the one implementation every tool shares.

Conventions (used everywhere in streamnst):
- a flow field is HxWx2 float32 (numpy) or Nx2xHxW (torch), (dx, dy) in pixels;
- `flow_ab` maps frame A to frame B: pixel p of A is seen at p + flow_ab(p) in B;
- `warp(B, flow_ab)` resamples B onto A's pixel grid: out(p) = B(p + flow_ab(p)).
  So to bring the previous output into the current frame, warp it with the flow
  from the current frame to the previous one.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from streamnst.core.frame import check_image


@functools.lru_cache(maxsize=16)
def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """1x2xHxW pixel coordinates (x, y); cached, as the live path asks for the same sizes."""
    with torch.inference_mode(False), torch.no_grad():
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                                torch.arange(w, device=device, dtype=dtype), indexing="ij")
        return torch.stack([xs, ys], dim=0).unsqueeze(0)


def warp(image: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border",
         mode: str = "bilinear") -> torch.Tensor:
    """Backward-warp NxCxHxW `image` by Nx2xHxW `flow`: out(p) = image(p + flow(p)).
    `mode`: bilinear, or bicubic (sharper when a picture is warped again and again)."""
    n, _, h, w = image.shape
    pos = _base_grid(h, w, flow.device, flow.dtype) + flow
    # normalise to [-1, 1] with align_corners=True: pixel centres at the ends
    norm = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=pos.dtype,
                        device=pos.device).view(1, 2, 1, 1)
    grid = (pos * norm - 1.0).permute(0, 2, 3, 1).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode,
                         align_corners=True)


@functools.lru_cache(maxsize=8)
def _base_map(h: int, w: int) -> np.ndarray:
    """HxWx2 float32 pixel coordinates (x, y), remap's two-channel map layout."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([xs, ys])


def warp_image(image: np.ndarray, flow: np.ndarray, cubic: bool = True,
               origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """`warp` for HxWxC numpy images and an HxWx2 flow, through OpenCV's remap (several
    times faster than grid_sample on a CPU): out(p) = image(p + flow(p)), border pixels
    repeated. Cubic keeps a picture sharp when it is warped again every frame; uint8
    results saturate, so cubic overshoot cannot build up. `origin`: where `flow`'s first
    pixel lies in `image` (x, y), to warp one box of a larger picture."""
    h, w = flow.shape[:2]
    if origin == (0, 0):
        grid = _base_map(h, w) + flow
    else:  # a box: its own coordinates (the cache holds whole frames' maps)
        x0, y0 = origin
        grid = flow.copy()
        grid[..., 0] += np.arange(x0, x0 + w, dtype=np.float32)[None, :]
        grid[..., 1] += np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    return cv2.remap(image, grid, None, cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def photometric_mask(a: np.ndarray, b: np.ndarray, flow_ab: np.ndarray,
                     tolerance: float) -> np.ndarray:
    """HxW float32 in [0, 1]: how far to trust `flow_ab` at each pixel of `a`, from how
    well `b` warped onto a's grid matches `a` (1 where it matches, 0 at a mean absolute
    difference of `tolerance`, in 0-255 units) and 0 where the flow leaves the frame.
    An occluded or disoccluded pixel is matched to something else and fails the test, so
    this one check does most of a forward-backward check's work for one flow, not two."""
    h, w = flow_ab.shape[:2]
    pos = _base_map(h, w) + flow_ab
    warped = cv2.remap(b, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = cv2.transform(cv2.absdiff(a, warped).astype(np.float32),
                        np.full((1, a.shape[2]), 1.0 / a.shape[2], np.float32))
    mask = np.clip(1.0 - err / tolerance, 0.0, 1.0)
    x, y = pos[..., 0], pos[..., 1]
    mask[(x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)] = 0.0
    return mask


def inside_mask(flow: torch.Tensor) -> torch.Tensor:
    """Nx1xHxW: 1 where p + flow(p) lands inside the image (a pixel that can be warped)."""
    _, _, h, w = flow.shape
    pos = _base_grid(h, w, flow.device, flow.dtype) + flow
    ok = (pos[:, 0] >= 0) & (pos[:, 0] <= w - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= h - 1)
    return ok.unsqueeze(1).to(flow.dtype)


def consistency_mask(flow_ab: torch.Tensor, flow_ba: torch.Tensor,
                     motion_boundaries: bool = True) -> torch.Tensor:
    """Nx1xHxW: 1 where A's pixel is reliably matched in B, 0 where occluded.

    Forward-backward check (Sundaram et al. 2010, as used by Ruder et al. and
    Lai et al.): following flow_ab then flow_ba must return near the start.
    Motion boundaries (large flow gradients) are excluded too when asked.
    """
    back = warp(flow_ba, flow_ab)
    diff = (flow_ab + back).pow(2).sum(1, keepdim=True)
    mag = flow_ab.pow(2).sum(1, keepdim=True) + back.pow(2).sum(1, keepdim=True)
    ok = diff <= 0.01 * mag + 0.5
    if motion_boundaries:
        gx = F.pad(flow_ab[..., :, 1:] - flow_ab[..., :, :-1], (0, 1, 0, 0))
        gy = F.pad(flow_ab[..., 1:, :] - flow_ab[..., :-1, :], (0, 0, 0, 1))
        grad = gx.pow(2).sum(1, keepdim=True) + gy.pow(2).sum(1, keepdim=True)
        ok &= grad <= 0.01 * flow_ab.pow(2).sum(1, keepdim=True) + 0.002
    return (ok & (inside_mask(flow_ab) > 0)).to(flow_ab.dtype)


def flow_to_tensor(flow: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx2 numpy -> 1x2xHxW float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)[None].to(
        device)


class FlowEstimator:
    """Dense optical flow between RGB uint8 frames with OpenCV's DIS, at reduced size.

    `max_side` bounds the longer side the flow is computed at (cheaper, smoother);
    the result is resized and rescaled to the input size.
    """

    #: DIS refuses frames under 12 px a side: smaller ones are flowed at this size
    MIN_SIDE = 16
    PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
               "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}

    def __init__(self, max_side: int | None = 320, preset: str = "medium") -> None:
        if preset not in self.PRESETS:
            raise ValueError(f"preset must be one of {sorted(self.PRESETS)}")
        self.max_side = max_side
        self._dis = cv2.DISOpticalFlow_create(self.PRESETS[preset])

    def _gray(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        gray = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY)
        if (gray.shape[1], gray.shape[0]) != size:
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return gray

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from frame `a` to frame `b` (see module conventions), HxWx2 float32."""
        h, w = a.shape[:2]
        if b.shape[:2] != (h, w):
            raise ValueError(f"frames differ in size: {a.shape[:2]} vs {b.shape[:2]}")
        s = 1.0 if not self.max_side else min(1.0, self.max_side / max(h, w))
        size = (max(self.MIN_SIDE, round(w * s)), max(self.MIN_SIDE, round(h * s)))
        flow = self._dis.calc(self._gray(a, size), self._gray(b, size), None)
        if size != (w, h):
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= w / size[0]
            flow[..., 1] *= h / size[1]
        return flow.astype(np.float32, copy=False)


def read_flo(path) -> np.ndarray:
    """Read a Middlebury .flo file (as MPI-Sintel ships ground truth) as HxWx2 float32."""
    from streamnst.core.errors import InputError

    with open(path, "rb") as f:
        magic = np.fromfile(f, np.float32, 1)
        if magic.size != 1 or magic[0] != 202021.25:
            raise InputError(f"{path}: not a .flo file")
        w, h = (int(v) for v in np.fromfile(f, np.int32, 2))
        data = np.fromfile(f, np.float32, 2 * w * h)
    if data.size != 2 * w * h:
        raise InputError(f"{path}: truncated .flo file")
    return data.reshape(h, w, 2)
