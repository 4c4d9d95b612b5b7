"""The one control surface: keys and the JSON control agree, and changes made within one
frame all count (they start from the pending state, not the one in effect)."""

import threading

import numpy as np
import pytest
from conftest import tinted_unet

from streamnst.cli.live_keys import handle_key
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live.control import LiveControl
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import NullSink
from streamnst.live.sources import ImageSource
from streamnst.nets.checkpoint_io import save_style


@pytest.fixture
def idle_pipeline(tmp_path, monkeypatch):
    """A pipeline that has not processed a frame: every change stays pending."""
    import cv2

    monkeypatch.setenv("STREAMNST_HOME", str(tmp_path))
    for i, name in enumerate(("a", "b", "c")):
        save_style(tmp_path / "checkpoints" / f"{name}.pth", tinted_unet((i, 0, 0)), "unet",
                   style={"name": name})
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((16, 16, 3), np.uint8))

    def make(name):
        return Stylizer(tmp_path / "checkpoints" / f"{name}.pth",
                        StylizerSettings(device="cpu", dtype="fp32"))

    return Pipeline(ImageSource(tmp_path / "img.png"), make("a"), [NullSink()],
                    BlendSettings(mode="flow", strength=0.5), stylizer_factory=make)


def test_two_key_presses_within_one_frame_both_count(idle_pipeline):
    p, stop = idle_pipeline, threading.Event()
    handle_key("+", p, stop)
    handle_key("+", p, stop)
    assert p.blend_settings.strength == 0.6  # 0.5 + two steps, neither lost
    assert p.blender.settings.strength == 0.5  # nothing applied yet: no frame came
    handle_key("b", p, stop)
    handle_key("b", p, stop)
    assert p.blend_settings.mode == "ema"  # flow -> off -> ema
    handle_key("n", p, stop)
    handle_key("n", p, stop)
    for _ in range(200):  # the loads run in the background
        if p.switching is None and p.style_name == "c":
            break
        threading.Event().wait(0.02)
    assert p.style_name == "c"  # a -> b -> c, not a -> b twice
    assert not stop.is_set()
    handle_key("q", p, stop)
    assert stop.is_set()


def test_keys_and_json_control_are_the_same_surface(idle_pipeline):
    control = LiveControl(idle_pipeline)
    state = control.apply({"strength": 0.3, "blend": "ema", "scale": 0.5})
    assert (state["strength"], state["blend"], state["scale"]) == (0.3, "ema", 0.5)
    control.nudge_strength(1)
    assert control.state()["strength"] == 0.35  # a key after JSON starts from JSON's value
    assert "error" in control.apply({"scale": 3})
    assert "error" in control.apply({"style": "nope"})
    assert "error" in control.apply({"strength": 2.0})
    assert "error" in control.apply({"strength": float("inf")})
    assert control.state()["strength"] == 0.35  # bad requests changed nothing
