"""--keep-colors: the painting's light and strokes in the input's own colours, on a real
style and real frames (the demo clip), from the engine, the CLI and the live control."""

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli

from streamnst.engine.colours import keep_colors
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live.control import LiveControl
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import NullSink
from streamnst.live.sources import ImageSource
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import read_image, write_image
from streamnst.offline.metrics import read_frames


@pytest.fixture(scope="module")
def demo_frame() -> np.ndarray:
    return list(read_frames(resolve_media("demo"), 76))[75]


def _ab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:]


def _chroma_gap(image: np.ndarray, frame: np.ndarray) -> float:
    return float(np.linalg.norm(_ab(image) - _ab(frame), axis=-1).mean())


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., 0].astype(int)


def test_the_shipped_default_keeps_the_inputs_chroma_and_its_own_light(demo_frame):
    painted = Stylizer("starry_night", StylizerSettings()).stylize(demo_frame)
    kept = Stylizer("starry_night", StylizerSettings(keep_colors=True)).stylize(demo_frame)
    # the bar: chroma within 25% of the default's distance from the input's
    assert _chroma_gap(kept, demo_frame) < 0.25 * _chroma_gap(painted, demo_frame)
    assert np.abs(_luma(kept) - _luma(painted)).mean() < 1.0  # the strokes and light stay
    assert np.abs(_luma(kept) - _luma(demo_frame)).mean() > 10  # still painted, not the input


def test_a_grey_input_gives_a_grey_picture_and_sizes_must_match(demo_frame):
    grey = cv2.cvtColor(cv2.cvtColor(demo_frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    painted = Stylizer("great_wave", StylizerSettings()).stylize(grey)
    out = keep_colors(grey, painted)
    spread = out.astype(int).max(axis=-1) - out.astype(int).min(axis=-1)
    assert spread.max() <= 2 and np.abs(painted.astype(int) - out).max() > 20
    with pytest.raises(ValueError, match="shapes differ"):
        keep_colors(grey, painted[:10])


@pytest.mark.slow
def test_stylize_cli_keeps_colors(tmp_path, demo_frame):
    src, plain, kept = tmp_path / "in.png", tmp_path / "plain.png", tmp_path / "kept.png"
    write_image(src, demo_frame)
    assert run_cli("stylize", src, plain).returncode == 0
    r = run_cli("stylize", src, kept, "--keep-colors")
    assert r.returncode == 0, r.stderr
    frame = read_image(src)
    assert _chroma_gap(read_image(kept), frame) < 0.25 * _chroma_gap(read_image(plain), frame)


def test_live_control_turns_it_on_and_off_and_it_outlasts_a_style_switch(tmp_path, demo_frame):
    write_image(tmp_path / "still.png", demo_frame)

    def make(name):
        return Stylizer(name, StylizerSettings(device="cpu", dtype="fp32"))

    p = Pipeline(ImageSource(tmp_path / "still.png"), make("starry_night"), [NullSink()],
                 stylizer_factory=make)
    control = LiveControl(p)
    assert control.state()["keep_colors"] is False
    assert control.apply({"keep_colors": "yes"}) == {"error": "keep_colors must be true or false"}
    assert control.apply({"keep_colors": True})["keep_colors"] is True
    assert p.stylizer.stylize(demo_frame).shape == demo_frame.shape
    thread = p.switch_style("great_wave")  # a file: loads in the background
    thread.join(30)
    p._apply_pending()  # what the inference thread does before the next frame
    assert p.stylizer.name == "great_wave" and p.summary().keep_colors
    control.toggle_keep_colors()  # the `c` key
    assert control.state()["keep_colors"] is False
