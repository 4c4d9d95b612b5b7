"""The int8 path (nets/quantize.py): a real ONNX Runtime session on the statically
quantised graph of a shipped style, against the fp32 network on demo frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamnst.engine.runner import ModelSettings, wants_int8
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.media.demo import demo_clip
from streamnst.media.video import VideoReader
from streamnst.nets import quantize
from streamnst.offline.metrics import psnr, warping_errors


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    frames = []
    with VideoReader(demo_clip()) as reader:
        for i, frame in enumerate(reader):
            if 100 <= i < 124:
                frames.append(cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA))
    return frames


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("xdg-cache"))


def _render(stylizer: Stylizer, frames: list[np.ndarray], mode: str) -> list[np.ndarray]:
    blend = Blender(BlendSettings(mode=mode))
    return [stylizer.stylize(f, blend) for f in frames]


def test_int8_looks_like_fp32_and_flickers_no_more(clip, cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", cache)
    fp32 = Stylizer("starry_night", StylizerSettings(dtype="fp32", threads=2))
    int8 = Stylizer("starry_night", StylizerSettings(dtype="int8", threads=2))
    assert (int8.dtype_name, int8.runner.backend) == ("int8", "onnx")
    assert int8.describe()["dtype"] == "int8"
    a, b = _render(fp32, clip, "off"), _render(int8, clip, "off")
    worst = min(psnr(x, y) for x, y in zip(a, b, strict=True))
    assert worst >= 35.0, worst
    ra = warping_errors(_render(fp32, clip, "flow"), clip).ratio
    rb = warping_errors(_render(int8, clip, "flow"), clip).ratio
    assert abs(rb - ra) <= 0.10 * ra, (ra, rb)


def test_the_int8_graph_is_cached_and_reused(cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", cache)
    Stylizer("starry_night", StylizerSettings(dtype="int8"))
    cached = list(quantize.cache_dir().glob("*.onnx"))
    assert len(cached) == 1 and not list(quantize.cache_dir().glob("*.partial*"))

    def no_quantizing(*_):
        raise AssertionError("quantised again instead of loading the cache")

    monkeypatch.setattr(quantize, "quantize_graph", no_quantizing)
    again = Stylizer("starry_night", StylizerSettings(dtype="int8"))
    assert again.dtype_name == "int8"


def test_auto_picks_int8_only_without_bf16_and_with_vnni(monkeypatch):
    from streamnst.engine import runner

    assert wants_int8(ModelSettings(dtype="int8"))
    assert not wants_int8(ModelSettings(dtype="fp32"))
    for bf16, vnni, expected in ((True, True, False), (False, True, True),
                                 (False, False, False)):
        monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda v=bf16: v)
        monkeypatch.setattr(runner, "cpu_has_vnni", lambda v=vnni: v)
        assert wants_int8(ModelSettings(dtype="auto", device="cpu")) is expected
