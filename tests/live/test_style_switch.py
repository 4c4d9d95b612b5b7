"""Switching and mixing styles of one bank on a running pipeline: the change is folded in on
the caller's thread (no loader thread, no gap in the frames) and the JSON control drives it,
with clear refusals where a mix cannot be made."""

import time

import cv2
import numpy as np
import pytest
from conftest import random_bank, tinted_unet
from http_helpers import post_control
from recording_camera import RecordingCamera

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live.control import LiveControl
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import VirtualCameraSink
from streamnst.live.sources import ImageSource
from streamnst.live.webrtc import WebRTCSink
from streamnst.media.imageio import read_image
from streamnst.nets.checkpoint_io import load_style, save_bank, save_style

SETTINGS = StylizerSettings(device="cpu", dtype="fp32")


@pytest.fixture
def running(tmp_path, monkeypatch):
    """A live pipeline painting bank style "a" of a three-style bank (blend off, so every
    frame is exactly the network's output) onto a recording virtual camera; a single-file
    style "solo" is installed next to the bank."""
    RecordingCamera.instances.clear()
    home = tmp_path / "home"
    monkeypatch.setenv("STREAMNST_HOME", str(home))
    save_bank(home / "checkpoints" / "trio.bank.pth", random_bank(3),
              [{"name": n} for n in ("a", "b", "c")])
    save_style(home / "checkpoints" / "solo.pth", tinted_unet((40, 0, 0)), "unet",
               style={"name": "solo"})
    cv2.imwrite(str(tmp_path / "still.png"),
                np.random.default_rng(1).integers(0, 255, (40, 56, 3), dtype=np.uint8))
    image = read_image(tmp_path / "still.png")  # the frame contract's RGB

    def make(name):
        return Stylizer(load_style(name), SETTINGS)

    web = WebRTCSink(port=0)  # POST /api/control, the viewer's own route
    p = Pipeline(ImageSource(tmp_path / "still.png", fps=40), make("a"),
                 [VirtualCameraSink(backend="recording"), web], BlendSettings(mode="off"),
                 stylizer_factory=make)
    web.server.pipeline = p  # the control handle a session binds
    p.start()
    p.web = web
    p.expected = lambda name, mix=None: _paint(make(name), name, mix, image)
    yield p
    p.stop()


def _paint(stylizer, name, mix, image):
    if mix is not None:
        stylizer = stylizer.restyled(name, mix)
    return stylizer.stylize(image)


def _frames(at_least: int, timeout: float = 20.0) -> list[np.ndarray]:
    cam = RecordingCamera.instances[0] if RecordingCamera.instances else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cam = RecordingCamera.instances[0] if RecordingCamera.instances else None
        if cam and len(cam.frames) >= at_least:
            break
        time.sleep(0.02)
    assert cam is not None and len(cam.frames) >= at_least, "the camera stopped getting frames"
    return cam.frames


def _wait_for(p, want: np.ndarray, timeout: float = 20.0) -> int:
    """Index of the first frame equal to `want`, waiting for it."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        frames = RecordingCamera.instances[0].frames
        for i in range(seen, len(frames)):
            if _same(frames[i], want):
                return i
        seen = len(frames)
        time.sleep(0.02)
    raise AssertionError("the expected style never reached the camera")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_a_switch_inside_the_bank_lands_on_the_next_frames_without_a_load(running):
    p = running
    a, b = p.expected("a"), p.expected("b")
    assert not _same(a, b)
    frames = _frames(3)
    assert all(_same(f, a) for f in frames[:3])
    assert p.switch_style("b") is None  # folded here: nothing loads in the background
    assert p.switching is None and p.style_name == "b" and not p.styles.loaders
    first_b = _wait_for(p, b)
    frames = _frames(first_b + 5)
    # every frame is one style or the other, "a" until the switch and "b" from then on
    assert all(_same(f, a) for f in frames[:first_b])
    assert all(_same(f, b) for f in frames[first_b:first_b + 5])
    assert p.summary().frame_failures == 0


def test_json_control_mixes_two_bank_styles_and_a_switch_keeps_the_mix(running):
    p, control = running, LiveControl(running)
    state = control.state()
    assert state["mixable"] == ["b", "c"] and state["mix"] == 0.0
    state = control.apply({"mix": 0.5, "mix_style": "c"})
    assert (state["mix"], state["mix_style"], state["style"]) == (0.5, "c", "a")
    half = p.expected("a", ("c", 0.5))
    assert not _same(half, p.expected("a")) and not _same(half, p.expected("c"))
    _wait_for(p, half)
    # another style of the bank keeps the mix; its mixable list no longer holds itself
    state = control.apply({"style": "b"})
    assert state["style"] == "b" and state["mixable"] == ["a", "c"]
    _wait_for(p, p.expected("b", ("c", 0.5)))
    control.nudge_mix(2)  # the [ ] keys: 0.5 -> 0.7
    assert control.state()["mix"] == 0.7
    _wait_for(p, p.expected("b", ("c", 0.7)))
    control.apply({"mix": 0})
    _wait_for(p, p.expected("b"))


def test_mixes_that_cannot_be_made_are_refused_and_change_nothing(running):
    p, control = running, LiveControl(running)
    assert control.apply({"mix": "0.5"}) == {"error": "mix must be a number"}
    assert "between 0 and 1" in control.apply({"mix": 1.5})["error"]
    assert "not in one bank" in control.apply({"mix": 0.5, "mix_style": "solo"})["error"]
    assert control.state()["mix"] == 0.0
    # a style file of its own loads in the background and then refuses a mix
    control.apply({"style": "solo"})
    for thread in p.styles.loaders:
        thread.join(10)
    _wait_for(p, p.expected("solo"))
    state = control.state()
    assert state["style"] == "solo" and state["mixable"] == []
    error = control.apply({"mix": 0.3})["error"]
    assert "solo" in error and "pick a bank style" in error
    assert control.state()["mix"] == 0.0


def _control(p, body: dict) -> tuple[int, dict]:
    return post_control(p.web.server.port, body)


def test_the_http_control_api_mixes_and_refuses_a_mix_as_text(running):
    p = running
    code, state = _control(p, {"mix": 0.4, "mix_style": "b"})
    assert code == 200 and (state["mix"], state["mix_style"]) == (0.4, "b")
    assert state["mixable"] == ["b", "c"]
    _wait_for(p, p.expected("a", ("b", 0.4)))
    code, state = _control(p, {"mix": "0.9"})
    assert code == 400 and state["error"] == "mix must be a number"
    assert _control(p, {"mix": 1.2})[0] == 400
    _frames(len(RecordingCamera.instances[0].frames) + 3)  # the stream kept going
    assert RecordingCamera.instances[0].frames and _same(
        RecordingCamera.instances[0].frames[-1], p.expected("a", ("b", 0.4)))
