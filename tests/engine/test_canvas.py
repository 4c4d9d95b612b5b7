"""The canvas grain: smooth, fixed, faint, and what lets a network paint a flat wall."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
from conftest import style_with

from streamnst.core.errors import CheckpointError
from streamnst.engine.canvas import CELL, MovingCanvas, add_canvas, canvas_grain, screen_grain
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.nets import UNet


def test_grain_is_smooth_unit_spread_noise_drawn_from_the_generator():
    g = canvas_grain(2, 64, 96, torch.Generator().manual_seed(3))
    assert g.shape == (2, 1, 64, 96)
    assert torch.allclose(g.std(dim=(1, 2, 3)), torch.ones(2), atol=1e-4)
    assert abs(float(g.mean())) < 0.3
    # blobs of about CELL px: neighbours agree, pixels CELL*4 apart do not
    near = torch.corrcoef(torch.stack([g[..., :, :-1].flatten(), g[..., :, 1:].flatten()]))
    far = torch.corrcoef(torch.stack([g[..., :, :-4 * CELL].flatten(),
                                      g[..., :, 4 * CELL:].flatten()]))
    assert near[0, 1] > 0.8 and abs(far[0, 1]) < 0.2
    again = canvas_grain(2, 64, 96, torch.Generator().manual_seed(3))
    assert torch.equal(g, again)
    assert not torch.equal(g[0], g[1])  # one grain per crop


def test_the_screen_grain_is_the_same_every_frame_and_as_strong_as_asked():
    frame = np.full((90, 160, 3), 128, np.uint8)
    assert add_canvas(frame, 0.0) is frame
    a, b = add_canvas(frame, 6.0), add_canvas(frame.copy(), 6.0)
    assert np.array_equal(a, b)
    delta = a.astype(float) - frame
    assert 5.0 < delta.std() < 7.0 and abs(delta.mean()) < 1.5
    assert np.array_equal(delta[..., 0], delta[..., 2])  # brightness only


def test_a_network_paints_a_flat_wall_only_when_given_a_canvas():
    """The reason for the grain. On a flat input every position of a convolutional network
    sees the same numbers, up to its stride: away from the frame's edges the output can
    only repeat itself every STRIDE pixels (a faint lattice, no strokes), whatever the
    weights. The grain breaks that symmetry."""
    wall = np.full((256, 384, 3), (150, 140, 120), np.uint8)
    inner = (slice(96, -96), slice(96, -96))

    def paint(canvas: float) -> np.ndarray:
        settings = StylizerSettings(dtype="fp32", shading=0.0, canvas=canvas)
        return Stylizer("starry_night", settings).stylize(wall)[inner].astype(int)

    def shifted_difference(out: np.ndarray) -> float:
        k = UNet.STRIDE
        return float(np.abs(out[k:, k:] - out[:-k, :-k]).mean())

    flat, painted = paint(0.0), paint(6.0)
    assert shifted_difference(flat) < 0.1 and flat.std(axis=(0, 1)).max() < 5
    assert shifted_difference(painted) > 5.0
    assert painted.std(axis=(0, 1)).min() > 3 * flat.std(axis=(0, 1)).max()


def test_the_style_stores_its_canvas_and_an_option_overrides_it(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    path = style_with(tmp_path, canvas=5.0)
    stored = Stylizer(path, StylizerSettings(dtype="fp32"))
    assert stored.canvas == 5.0 and stored.describe()["canvas"] == 5.0
    off = Stylizer(path, StylizerSettings(dtype="fp32", canvas=0.0))
    assert np.array_equal(stored.stylize(frame), off.stylize(add_canvas(frame, 5.0)))
    assert not np.array_equal(stored.stylize(frame), off.stylize(frame))
    with pytest.raises(Exception, match="canvas must be between 0 and 32"):
        StylizerSettings(canvas=40.0)


@pytest.mark.parametrize("bad", [-1.0, 99.0, "lots", True])
def test_a_bad_stored_canvas_is_one_clear_line(tmp_path, bad):
    with pytest.raises(CheckpointError, match="stored canvas .* is not a number from 0 to 32"):
        Stylizer(style_with(tmp_path, canvas=bad))


def test_the_moving_canvas_stays_put_follows_motion_and_falls_back_where_flow_fails():
    size = (64, 96)
    base = screen_grain(*size)
    canvas = MovingCanvas()
    still, trusted = np.zeros((*size, 2), np.float32), np.ones(size, np.float32)
    assert canvas.follow(None, None, size) is base  # the first frame
    assert np.allclose(canvas.follow(still, trusted, size), base, atol=1e-3)
    # the picture moved 6 px right: each pixel's grain comes from 6 px to its left
    moved = canvas.follow(np.full((*size, 2), (-6.0, 0.0), np.float32), trusted, size)
    inner = (slice(None), slice(12, -12))
    assert np.corrcoef(moved[:, 6:][inner].ravel(), base[:, :-6][inner].ravel())[0, 1] > 0.95
    assert float(moved.std()) > 0.9  # mostly the moved grain, a little of the screen's
    lost = canvas.follow(np.full((*size, 2), (-6.0, 0.0), np.float32),
                         np.zeros(size, np.float32), size)
    assert np.allclose(lost, base, atol=1e-3)  # an occlusion or a cut: the screen grain
    assert np.allclose(canvas.follow(still, trusted, size), base, atol=1e-3)  # no creep


def _moving_patch_frames(n: int, step: int = 4) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(2)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (60, 60, 3), np.uint8), (0, 0), 1.5)
    frames = []
    for i in range(n):
        frame = np.full((160, 256, 3), (150, 140, 120), np.uint8)
        x = 40 + i * step
        frame[50:110, x:x + 60] = patch
        frames.append((frame, x))
    return frames


def test_strokes_painted_from_the_canvas_move_with_the_picture():
    """A textured patch slides across a wall. With the flow blend the grain moves with it,
    so the patch's strokes change less from frame to frame than on the fixed screen grain
    (the blend itself is off here: strength 0)."""
    stylizer = Stylizer("starry_night", StylizerSettings(dtype="fp32", shading=0.0,
                                                         canvas=6.0))

    def patch_change(mode: str) -> float:
        blender = Blender(BlendSettings(mode=mode, strength=0.0))
        outs = [(stylizer.stylize(f, blender).astype(float), x)
                for f, x in _moving_patch_frames(8)]
        diffs = [np.abs(a[60:100, xa + 10:xa + 50] - b[60:100, xb + 10:xb + 50]).mean()
                 for (a, xa), (b, xb) in itertools.pairwise(outs)]
        return float(np.median(diffs[1:]))

    fixed, moving = patch_change("off"), patch_change("flow")
    assert moving < 0.7 * fixed, (moving, fixed)
