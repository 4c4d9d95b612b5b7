"""A painting learnt while the filter runs (live/learner.py), and the viewer's upload of
one (live/paintings.py): real pipelines, the real bank and loss network, real HTTP."""

from __future__ import annotations

import http.client
import os
import time

import cv2
import numpy as np
import pytest

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live.learner import Learner, learnt_path
from streamnst.live.paintings import MAX_BYTES, paintings_dir
from streamnst.live.pipeline import Pipeline
from streamnst.live.session import LiveConfig, build_session
from streamnst.live.sinks import NullSink
from streamnst.live.sources import ImageSource
from streamnst.live.webrtc import WebRTCSink
from streamnst.nets.checkpoint_io import available_styles, load_style, user_dir
from streamnst.training.quick import PALETTE

FAST = StylizerSettings(device="cpu", scale=0.25)


def _painting(path, size=160):
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = np.sin((xx + yy) / 4.0) > 0
    rgb = np.where(stripes[..., None], [200, 30, 30], [20, 40, 190]).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def scene(tmp_path):
    img = np.zeros((120, 160, 3), np.uint8)
    img[20:100, 40:120] = (30, 160, 220)
    cv2.imwrite(str(tmp_path / "scene.png"), img)
    return tmp_path / "scene.png"


def _pipeline(scene, *sinks) -> Pipeline:
    def make(name):
        return Stylizer(name, FAST)

    return Pipeline(ImageSource(scene, fps=15), make("starry_night"), [NullSink(), *sinks],
                    stylizer_factory=make)


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_a_painting_is_learnt_live_swapped_in_and_saved(tmp_path, scene, monkeypatch):
    monkeypatch.setattr("streamnst.live.learner.SWAP_S", 1.0)
    painting = _painting(tmp_path / "my stripes.png")
    pipe = _pipeline(scene).start()
    try:
        learner = pipe.learning.start(painting, minutes=0.3)
        with pytest.raises(Exception, match="one painting at a time"):
            pipe.learning.start(painting)
        assert _wait(lambda: pipe.stylizer.name == learner.name, 120), learner.progress()
        assert pipe.stylizer.describe()["palette"] == PALETTE  # with the painting's colours
        flowing = pipe.stats.frames_out
        assert _wait(lambda: pipe.stats.frames_out > flowing + 5, 20)  # frames keep coming
        assert _wait(lambda: learner.state == "done", 120), learner.progress()
    finally:
        pipe.stop()
    saved = learnt_path(painting)
    assert learner.saved == saved and saved.parent == user_dir()
    assert saved.stem == "my_stripes_" + saved.stem.rsplit("_", 1)[1]
    assert saved.stem in available_styles()  # `streamnst styles` lists it
    assert load_style(saved).palette == PALETTE
    # the next session with the same painting starts with the saved style at once
    notices = []
    from streamnst.live.session import SessionHooks

    again = build_session(LiveConfig(source=str(scene), outputs=("null",), style=str(painting)),
                          SessionHooks(notice=notices.append))
    assert again.stylizer.name == saved.stem and again.learning.current is None
    assert "learnt from it before" in notices[0]


def test_a_cancelled_or_failed_learning_keeps_the_style_and_writes_nothing(tmp_path, scene):
    painting = _painting(tmp_path / "p.png")
    pipe = _pipeline(scene).start()
    try:
        learner = pipe.learning.start(painting, minutes=5)
        assert _wait(lambda: learner.state == "learning", 120), learner.progress()
        learner.cancel()
        assert _wait(lambda: not learner.running, 60)
        assert learner.state == "cancelled" and not learnt_path(painting).exists()
        running = pipe.stylizer.name
        frames = pipe.stats.frames_out
        assert _wait(lambda: pipe.stats.frames_out > frames + 3, 20)
        # a failure: the style directory cannot be written (a file stands in its place)
        blocked = Learner(pipe, painting, minutes=0.05,
                          out=tmp_path / "not-a-dir" / "x.pth")
        (tmp_path / "not-a-dir").write_text("a file")
        blocked.start().thread.join(180)
        assert blocked.state == "failed" and blocked.error, blocked.progress()
        assert pipe.stylizer.name in (running, blocked.name)  # the style it had
        assert pipe.error is None and _wait(lambda: pipe.stats.frames_out > frames + 10, 20)
    finally:
        pipe.stop()


@pytest.fixture
def served(scene):
    web = WebRTCSink(port=0)
    pipe = _pipeline(scene, web)
    web.server.pipeline = pipe  # the control handle a session binds
    pipe.start()
    yield pipe, web.server
    pipe.stop()


def _post(server, body, ctype="application/octet-stream", headers=None, path="/api/paintings"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest("POST", path, skip_host=True)
        conn.putheader("Host", f"127.0.0.1:{server.port}")
        conn.putheader("Content-Type", ctype)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def test_the_upload_refuses_what_it_must_and_never_writes_outside(served, tmp_path):
    pipe, server = served
    png = cv2.imencode(".png", cv2.imread(str(_painting(tmp_path / "s.png"))))[1].tobytes()
    assert _post(server, png, ctype="image/png")[0] == 415  # a fixed content type
    assert _post(server, png, ctype="text/plain")[0] == 415
    assert _post(server, png, headers={"Origin": "http://evil.example"})[0] == 403
    assert _post(server, b"\0" * (MAX_BYTES + 1))[0] == 413  # over 10 MB
    code, text = _post(server, b"GIF89a not really an image")
    assert code == 400 and "not a readable image" in text
    # a pixel bomb: a small PNG whose header says 6000x6000 (36 MP, over the 25 MP cap)
    bomb = cv2.imencode(".png", np.zeros((6000, 6000), np.uint8))[1].tobytes()
    assert len(bomb) < MAX_BYTES
    code, text = _post(server, bomb)
    assert code == 400 and "megapixel" in text
    assert not paintings_dir().exists() or not any(paintings_dir().iterdir())
    # a link planted where a stored painting will go is replaced, not followed
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep me")
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR),
                       cv2.COLOR_BGR2RGB)
    import hashlib

    target = paintings_dir() / f"{hashlib.sha256(rgb.tobytes()).hexdigest()[:16]}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, target)
    names = "../../../etc/passwd", "/tmp/abs.png", "..\\..\\x.png"
    code, text = _post(server, png, headers={"X-Painting-Name": names[0]})
    assert code == 200, text
    assert outside.read_bytes() == b"keep me" and not target.is_symlink()
    stored = [p for p in user_dir().rglob("*") if p.is_file()]
    assert stored == [target]  # only the generated name, under the style directory
    learning = pipe.learning.current
    assert learning.out.parent == user_dir() and learning.out.name.startswith("passwd_")
    code, text = _post(server, png, headers={"X-Painting-Name": names[1]})
    assert code == 409 and "one painting at a time" in text
    pipe.learning.stop()  # cancelled: no style written
    assert not learning.out.exists()


def test_the_upload_needs_the_token_off_loopback(scene, tmp_path):
    web = WebRTCSink(port=0, token="s3cret")  # as a server bound off loopback has
    pipe = _pipeline(scene, web)
    web.server.pipeline = pipe
    pipe.start()
    try:
        png = cv2.imencode(".png", np.full((32, 32, 3), 90, np.uint8))[1].tobytes()
        assert _post(web.server, png)[0] == 401
        code, _ = _post(web.server, png, path="/api/paintings?token=s3cret")
        assert code == 200
    finally:
        pipe.stop()
