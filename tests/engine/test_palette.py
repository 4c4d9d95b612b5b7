"""The palette step: a frame's colour mean and spread moved toward a painting's, one fixed
map for a still video, followed slowly when the scene changes."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import style_with

from streamnst.core.errors import CheckpointError
from streamnst.engine.palette import FOLLOW, MAX_GAIN, PaletteMatch, moments, transfer_matrix
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.media.imageio import read_image, resize_max_side
from streamnst.offline.metrics import colour_distance, lab_moments


def _painting() -> np.ndarray:
    """The Starry Night, at thumbnail size: a palette unlike a grey office."""
    path = Path(__file__).resolve().parents[2] / "styles" / "vangogh_starry_night_1889.jpg"
    return resize_max_side(read_image(path), 128)


def _room(seed: int = 0) -> np.ndarray:
    """A grey-blue room lit from the left, with some texture and a person-sized warm patch."""
    rng = np.random.default_rng(seed)
    room = np.full((180, 320, 3), (150, 155, 165), np.float32)
    room *= np.linspace(0.4, 1.3, 320, dtype=np.float32)[None, :, None]
    room += rng.normal(0, 10, room.shape)
    room[40:180, 120:200] = (190, 150, 130)
    return np.clip(room, 0, 255).astype(np.uint8)


def test_the_frame_takes_the_paintings_palette_and_none_leaves_it():
    painting, room = _painting(), _room()
    target = lab_moments(painting)
    moved = PaletteMatch(painting, 1.0)(room)
    assert colour_distance(moved, target) < 0.2 * colour_distance(room, target)
    half = PaletteMatch(painting, 0.5)(room)
    assert colour_distance(moved, target) < colour_distance(half, target) \
        < colour_distance(room, target)
    assert np.array_equal(PaletteMatch(painting, 0.0)(room), room)
    with pytest.raises(ValueError):
        PaletteMatch(painting, 1.5)


def test_the_moments_are_opencvs_ycrcb():
    room = _room()
    ycc = cv2.cvtColor(room, cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.float64)
    expected = np.concatenate([ycc.mean(0), ycc.std(0)])
    assert np.abs(moments(room) - expected).max() < 1e-3
    target = moments(_painting())
    got = moments(PaletteMatch(_painting(), 1.0)(room))
    assert np.abs(got[:3] - target[:3]).max() < 3.0  # the means land (uint8 clipping aside)


def test_a_grey_frame_is_not_blown_up_into_colour():
    grey = np.full((90, 160, 3), 128, np.uint8)
    grey += np.random.default_rng(1).integers(0, 2, grey.shape, dtype=np.uint8)
    out = PaletteMatch(_painting(), 1.0)(grey)
    assert (moments(out)[3:] <= MAX_GAIN * moments(grey)[3:] + 1.0).all()


def test_a_video_is_followed_slowly_and_a_still_one_gets_one_map():
    painting, room = _painting(), _room()
    match = PaletteMatch(painting, 1.0)
    first = [match(room, follow=True) for _ in range(5)]
    assert all(np.array_equal(first[0], f) for f in first)  # a still scene: no flicker
    lit = room.copy()
    lit[:, :100] = 250  # a lamp comes on: the frame's statistics jump
    old_map = cv2.transform(lit, transfer_matrix(moments(room), moments(painting), 1.0)
                            .astype(np.float32))
    at_once = PaletteMatch(painting, 1.0)(lit)

    def change(image: np.ndarray) -> float:
        return float(np.abs(image.astype(np.float32) - old_map).mean())

    # the map moved about a FOLLOW share of the way, not the whole way at once
    assert change(match(lit, follow=True)) < 3 * FOLLOW * change(at_once)
    for _ in range(int(5 / FOLLOW)):
        followed = match(lit, follow=True)
    assert np.abs(followed.astype(int) - at_once).mean() < 1.0  # and gets there


def test_a_style_stores_its_amount_and_an_option_overrides_it(tmp_path):
    painting, room = _painting(), _room()
    path = style_with(tmp_path, palette=0.8, thumbnail=torch.from_numpy(painting))
    stored = Stylizer(path, StylizerSettings(dtype="fp32"))
    assert stored.describe()["palette"] == 0.8
    off = Stylizer(path, StylizerSettings(dtype="fp32", palette=0.0))
    raw = off.stylize(room)
    assert off.describe()["palette"] == 0.0
    assert np.array_equal(stored.stylize(room), PaletteMatch(painting, 0.8)(raw))
    # in a video the stylizer follows the frames: the same still frame, the same map
    blend = Blender(BlendSettings(mode="off"))
    video = [stored.stylize(room, blend) for _ in range(3)]
    assert all(np.array_equal(video[0], v) for v in video)
    target = lab_moments(painting)
    assert colour_distance(video[0], target) < 0.6 * colour_distance(raw, target)
    with pytest.raises(CheckpointError, match="stored palette .* is not a number from 0 to 1"):
        Stylizer(style_with(tmp_path, palette=3.0))
    with pytest.raises(Exception, match="palette must be between 0 and 1"):
        StylizerSettings(palette=-0.1)
