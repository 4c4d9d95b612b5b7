import cv2
import numpy as np
import pytest
from conftest import style_with

from streamnst.core.errors import CheckpointError
from streamnst.engine.shading import keep_shading
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.nets.checkpoint_io import load_style


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dark figure on a light wall, and a "stylised" twin that paints a bright glow
    around the figure plus a fine stroke texture. Returns (input, styled, ring mask)."""
    h, w = 180, 320
    frame = np.full((h, w, 3), (170, 160, 150), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (130, 50), (190, 179), 255, -1)
    frame[mask > 0] = (50, 45, 60)
    ring = cv2.dilate(mask, np.ones((25, 25), np.uint8)) & ~mask
    glow = cv2.GaussianBlur(ring.astype(np.float32) / 255 * 60, (0, 0), 4)
    strokes = np.random.default_rng(0).normal(0, 12, (h, w)).astype(np.float32)
    tint = np.array([-20.0, 5.0, 25.0], np.float32)  # the style's palette shift
    styled = frame.astype(np.float32) + tint + (glow + strokes)[..., None]
    return frame, np.clip(styled, 0, 255).astype(np.uint8), ring > 0


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _fine(image: np.ndarray) -> float:
    return float(cv2.Laplacian(_luma(image), cv2.CV_32F).var())


def test_the_glow_goes_the_strokes_and_colours_stay():
    frame, styled, ring = _scene()
    wall = np.zeros_like(ring)
    wall[:, :60] = True  # far from the figure
    out = keep_shading(frame, styled, 1.0)

    def glow(image):
        return _luma(image)[ring].mean() - _luma(image)[wall].mean()

    assert glow(styled) > 15
    assert abs(glow(out)) < glow(styled) / 3
    assert 0.9 < _fine(out) / _fine(styled) < 1.1
    ycc = [cv2.cvtColor(im, cv2.COLOR_RGB2YCrCb).astype(np.float32) for im in (styled, out)]
    inside = np.all([(im > 0).all(axis=2) & (im < 255).all(axis=2) for im in (styled, out)],
                    axis=0)  # pixels neither image clipped
    chroma_change = np.abs(ycc[0][..., 1:] - ycc[1][..., 1:])[inside]
    assert chroma_change.mean() < 0.5 and chroma_change.max() <= 2.0  # uint8 rounding only


def test_half_an_amount_does_half_and_none_does_nothing():
    frame, styled, ring = _scene()
    assert keep_shading(frame, styled, 0.0) is styled
    full = _luma(keep_shading(frame, styled, 1.0)) - _luma(styled)
    half = _luma(keep_shading(frame, styled, 0.5)) - _luma(styled)
    assert np.abs(half[ring] - full[ring] / 2).mean() < 1.0
    with pytest.raises(ValueError):
        keep_shading(frame[:, :100], styled, 1.0)


def test_the_style_stores_its_amount_and_an_option_overrides_it(tmp_path):
    frame, _, _ = _scene()
    path = style_with(tmp_path, shading=0.8)
    stored = Stylizer(path, StylizerSettings(dtype="fp32"))
    assert stored.shading == 0.8 and stored.describe()["shading"] == 0.8
    off = Stylizer(path, StylizerSettings(dtype="fp32", shading=0.0))
    raw = off.stylize(frame)
    assert np.array_equal(stored.stylize(frame),
                          keep_shading(frame, raw, 0.8))
    with pytest.raises(Exception, match="shading must be between 0 and 1"):
        StylizerSettings(shading=1.5)


@pytest.mark.parametrize("bad", [2.0, "lots", True])
def test_a_bad_stored_amount_is_one_clear_line(tmp_path, bad):
    with pytest.raises(CheckpointError, match="stored shading .* is not a number from 0 to 1"):
        Stylizer(style_with(tmp_path, shading=bad))


def test_styles_without_it_give_nothing_back(tiny_style):
    assert load_style(tiny_style).shading == 0.0
