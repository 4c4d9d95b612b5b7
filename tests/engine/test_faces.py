"""--keep-face: a real detector (dlib's HOG, from the dlib-bin wheel) on real faces (the
demo clip: Intel's ASL signers), the soft mask and its smoothing over time, and the
control from the engine, the CLI, the HTTP API and a running pipeline."""

import time
from dataclasses import replace

import numpy as np
import pytest
from cli_helpers import run_cli
from http_helpers import post_control
from recording_camera import RecordingCamera

from streamnst.engine import faces as keeping
from streamnst.engine.face_detect import Face, FaceDetector, to_gray
from streamnst.engine.faces import FaceKeeper, face_mask, keep_face
from streamnst.engine.palette import moments
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import VirtualCameraSink
from streamnst.live.sources import ImageSource
from streamnst.live.webrtc import WebRTCSink
from streamnst.media.demo import resolve_media
from streamnst.media.imageio import read_image, resize_to, write_image
from streamnst.nets.checkpoint_io import load_style
from streamnst.offline.metrics import read_frames

FAST = StylizerSettings(device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def demo() -> list[np.ndarray]:
    return list(read_frames(resolve_media("demo"), 120))


@pytest.fixture(scope="module")
def close_up(demo) -> np.ndarray:
    """A close-up head and shoulders: the demo's signer cut around the face, at 640x480."""
    return resize_to(np.ascontiguousarray(demo[100][20:260, 170:490]), (640, 480))


@pytest.fixture(scope="module")
def wall(demo) -> np.ndarray:
    """The demo's wall and window, right of the signer: no face."""
    return np.ascontiguousarray(demo[100][:, 460:])


def test_the_detector_finds_the_signers_face_and_nothing_on_the_wall(demo, wall):
    detector = FaceDetector()
    found = [detector.find_all(to_gray(f)) for f in demo[::10]]
    assert sum(len(f) == 1 for f in found) >= 0.8 * len(found)  # ~one face, most frames
    for faces in found:
        for face in faces:  # the signer's head: top middle of the frame, ~75 px
            assert 240 < face.cx < 400 and 60 < face.cy < 170 and 55 < face.size < 110
    assert detector.find_all(to_gray(wall)) == []
    near = detector.find_near(to_gray(demo[100]), found[10][0])
    assert near is not None and abs(near.cx - found[10][0].cx) < 10


def test_the_mask_is_soft_round_and_local():
    mask = face_mask((200, 200), [(Face(100, 100, 80), 1.0)])
    assert mask[92, 100] == 1.0  # the middle is fully kept
    assert mask[0, 0] == 0.0 and mask[199, 100] == 0.0  # nothing far away
    row = mask[92, 100:]  # from the middle outwards: falls off, never jumps
    assert np.all(np.diff(row) <= 0) and np.abs(np.diff(row)).max() < 0.12
    assert face_mask((200, 200), [(Face(100, 100, 80), 0.0)]) is None
    half = face_mask((200, 200), [(Face(100, 100, 80), 0.5)])
    assert half.max() == pytest.approx(0.5)


def _region_change(out, frame, mask, inside: bool) -> float:
    sel = mask >= 0.99 if inside else mask == 0
    return float(np.abs(out.astype(np.float32) - frame)[sel].mean())


def test_keep_face_one_spares_the_face_and_paints_the_background(close_up):
    """The issue's bar, on a close-up talking head: the change inside the face cut by at
    least half, at least 80% of the background's change kept."""
    stylizer = Stylizer("starry_night", FAST)
    default = stylizer.stylize(close_up)
    stylizer.set_keep_face(1.0)
    kept = stylizer.stylize(close_up)
    faces = FaceDetector().find_all(to_gray(close_up))
    assert len(faces) == 1 and faces[0].size > 150
    mask = face_mask(close_up.shape[:2], [(faces[0], 1.0)])
    assert _region_change(kept, close_up, mask, True) \
        < 0.5 * _region_change(default, close_up, mask, True)
    assert _region_change(kept, close_up, mask, False) \
        >= 0.8 * _region_change(default, close_up, mask, False)
    stylizer.set_keep_face(0.6)  # some of the painting stays on the face
    some = stylizer.stylize(close_up)
    assert _region_change(kept, close_up, mask, True) < _region_change(some, close_up, mask, True) \
        < _region_change(default, close_up, mask, True)


def test_a_kept_face_takes_the_palette_of_a_style_that_has_one(close_up):
    """With a palette (engine/palette.py), the face kept is the frame's own in the
    painting's colours: it sits in the dark painting as it sat in the bright room, not as
    the camera's bright patch."""
    kept = {amount: Stylizer("starry_night", replace(FAST, keep_face=1.0, palette=amount))
            .stylize(close_up) for amount in (0.0, 1.0)}
    face = FaceDetector().find_all(to_gray(close_up))[0]
    inside = face_mask(close_up.shape[:2], [(face, 1.0)]) >= 0.99

    def face_over_frame(image) -> float:  # the face's mean lightness (Y) over the frame's
        return float(moments(np.ascontiguousarray(image[inside][None]))[0]
                     - moments(image)[0])

    own = face_over_frame(close_up)  # darker than the bright wall behind it
    assert abs(face_over_frame(kept[1.0]) - own) < 10
    assert abs(face_over_frame(kept[0.0]) - own) > 30  # the untoned face: a bright patch
    # the frame's own features: the toned face follows the input's light and dark
    grey = {k: v[inside].astype(np.float32).mean(axis=1) for k, v in kept.items()}
    assert np.corrcoef(grey[0.0], grey[1.0])[0, 1] > 0.95


def test_a_frame_without_a_face_is_unchanged_by_the_option(wall):
    plain = Stylizer("starry_night", FAST).stylize(wall)
    kept = Stylizer("starry_night", StylizerSettings(device="cpu", dtype="fp32",
                                                     keep_face=1.0)).stylize(wall)
    assert np.array_equal(plain, kept)


def _peak(mask) -> float:
    return 0.0 if mask is None else float(mask.max())


def test_a_face_fades_in_and_out_and_a_few_misses_are_ridden_over(demo, wall):
    """Over a stream, a face's mask rises and falls a step at a time, never at once."""
    face, empty = demo[100], np.zeros_like(demo[100])
    keeper = FaceKeeper()
    peaks = [_peak(keeper.mask(empty)) for _ in range(3)]
    peaks += [_peak(keeper.mask(face)) for _ in range(12)]
    assert peaks[:3] == [0.0] * 3 and peaks[-1] == 1.0
    rises = np.diff(peaks)
    assert rises.min() >= 0 and rises.max() <= keeping.FADE_IN + 1e-6  # faded in, not at once
    # the face goes: it is held over a few missed searches, then fades out step by step
    held = keeping.MISSES_HELD * keeping.NEAR_EVERY
    gone = [_peak(keeper.mask(empty)) for _ in range(held + 14)]
    assert gone[0] == 1.0 and gone[-1] == 0.0
    falls = -np.diff(gone)
    assert falls.min() >= 0 and falls.max() <= keeping.FADE_OUT + 1e-6
    assert sum(p == 1.0 for p in gone) >= held - keeping.NEAR_EVERY  # held a while


def test_the_mask_moves_smoothly_with_a_jump_and_follows_the_flow(demo):
    """A head that jumps 40 px between frames: from the detections alone the mask glides
    after it; with the blend's flow it is where the head is from the next frame on."""
    frame = demo[100]
    moved = np.roll(frame, 40, axis=1)

    def centre(mask):
        return float((mask.sum(0) * np.arange(mask.shape[1])).sum() / mask.sum())

    keeper = FaceKeeper()
    start = centre(keeper.mask(frame))
    steps = [centre(keeper.mask(moved)) for _ in range(4 * keeping.NEAR_EVERY)]
    assert all(b >= a - 0.01 for a, b in zip([start] + steps, steps, strict=False))
    assert steps[0] - start < 5  # no jump on the frame it moved
    assert 30 < steps[-1] - start < 45  # caught up by the searches
    assert max(np.diff([start] + steps)) < 25  # glided (each search pulls part way)

    blend, keeper = Blender(), FaceKeeper()
    blend(frame, frame)
    start = centre(keeper.mask(frame, None, blend.last_motion))
    blend(moved, moved)  # the blend's flow from the moved frame back
    followed = centre(keeper.mask(moved, None, blend.last_motion))
    assert 30 < followed - start < 50


def test_faces_are_found_at_the_frames_own_size_when_the_work_is_smaller(demo):
    """At --scale 0.5 the demo's faces are 37 px in the working frame, too small to find:
    the keeper searches the frame as it came and draws the mask at the working size."""
    keeper = FaceKeeper()
    mask = keeper.mask(demo[100], (240, 320))
    assert mask is not None and mask.shape == (240, 320)
    ys, xs = np.nonzero(mask > 0.5)
    assert 120 < xs.mean() < 200 and 30 < ys.mean() < 90  # the head, halved


def test_keep_face_mixes_only_under_the_mask():
    frame = np.full((50, 60, 3), 200, np.uint8)
    styled = np.zeros_like(frame)
    mask = np.zeros((50, 60), np.float32)
    mask[10:20, 10:20] = 1.0
    out = keep_face(frame, styled, mask, 0.5)
    assert np.all(out[12, 12] == 100) and np.all(out[30, 30] == 0)
    assert keep_face(frame, styled, None, 1.0) is styled
    assert styled.max() == 0  # the input is never written


def test_a_style_may_store_its_own_amount_and_the_option_wins(close_up):
    ckpt = load_style("starry_night")
    ckpt.style["keep_face"] = 0.4
    assert Stylizer(ckpt, FAST).keep_face == 0.4
    assert Stylizer(ckpt, StylizerSettings(device="cpu", dtype="fp32",
                                           keep_face=0.0)).keep_face == 0.0
    with pytest.raises(Exception, match="keep-face must be between 0 and 1"):
        StylizerSettings(keep_face=1.5)


@pytest.mark.slow
def test_stylize_cli_keeps_the_face(tmp_path, close_up):
    src, plain, kept = tmp_path / "in.png", tmp_path / "plain.png", tmp_path / "kept.png"
    write_image(src, close_up)
    assert run_cli("stylize", src, plain).returncode == 0
    r = run_cli("stylize", src, kept, "--keep-face", "1")
    assert r.returncode == 0, r.stderr
    face = FaceDetector().find_all(to_gray(close_up))[0]
    mask = face_mask(close_up.shape[:2], [(face, 1.0)])
    assert _region_change(read_image(kept), close_up, mask, True) \
        < 0.5 * _region_change(read_image(plain), close_up, mask, True)
    r = run_cli("stylize", src, kept, "--keep-face", "2", "--overwrite")
    assert r.returncode != 0 and "2" in r.stderr and "Traceback" not in r.stderr


def test_the_http_api_turns_it_on_in_a_running_pipeline(tmp_path, close_up):
    """POST {"keep_face": 1}: the detector thread starts, the face comes through in the
    frames a virtual camera receives, and bad values are refused."""
    RecordingCamera.instances.clear()
    write_image(tmp_path / "still.png", close_up)
    web = WebRTCSink(port=0)
    p = Pipeline(ImageSource(tmp_path / "still.png", fps=20), Stylizer("starry_night", FAST),
                 [VirtualCameraSink(backend="recording"), web])
    web.server.pipeline = p  # the control handle a session binds
    p.start()
    try:
        port = web.server.port
        refused = (400, {"error": "keep_face must be a number"})
        assert post_control(port, {"keep_face": "1"}) == refused
        code, state = post_control(port, {"keep_face": 1.5})
        assert code == 400 and "between 0 and 1" in state["error"]
        code, state = post_control(port, {"keep_face": 1})
        assert code == 200 and state["keep_face"] == 1.0
        face = FaceDetector().find_all(to_gray(close_up))[0]
        mask = face_mask(close_up.shape[:2], [(face, 1.0)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            frames = RecordingCamera.instances[0].frames if RecordingCamera.instances else []
            if frames and _region_change(frames[-1], close_up, mask, True) < 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the face never came through")
        assert p.faces.detections > 0 and p.faces._thread is not None  # in its own thread
        assert p.summary().keep_face == 1.0
    finally:
        p.stop()
