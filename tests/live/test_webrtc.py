"""WebRTC output on loopback: real aiortc viewers against the real server and pipeline."""

import asyncio
import json
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from conftest import tinted_unet
from webrtc_client import Viewer

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live.pipeline import Pipeline
from streamnst.live.sources import ImageSource
from streamnst.live.webrtc import WebRTCServer, WebRTCSink, is_loopback
from streamnst.nets.checkpoint_io import save_style

pytestmark = pytest.mark.network


def _styles(home):
    paths = {}
    for name, tint in (("alpha", (1.5, -1.0, 0.0)), ("beta", (-1.5, 1.0, 1.0))):
        paths[name] = save_style(home / "checkpoints" / f"{name}.pth", tinted_unet(tint),
                                 "unet", style={"name": name})
    return paths


@pytest.fixture
def live(tmp_path, monkeypatch):
    """A running pipeline: a flat-colour image source -> style 'alpha' -> WebRTC sink."""
    monkeypatch.setenv("STREAMNST_HOME", str(tmp_path))
    paths = _styles(tmp_path)
    img = np.zeros((96, 128, 3), np.uint8)
    img[:] = (30, 160, 220)
    cv2.imwrite(str(tmp_path / "flat.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def make(name):
        return Stylizer(paths.get(name, name), StylizerSettings(device="cpu", dtype="fp32"))

    created = []

    def start(max_viewers=4, token=None):
        sink = WebRTCSink(port=0, max_viewers=max_viewers, token=token)
        pipe = Pipeline(ImageSource(tmp_path / "flat.png", fps=15), make("alpha"), [sink],
                        stylizer_factory=make)
        sink.server.pipeline = pipe  # the control handle a session binds
        pipe.start()
        created.append(pipe)
        expected = {n: make(n).stylize(img) for n in ("alpha", "beta")}
        return pipe, sink.server, expected

    yield start
    for pipe in created:
        pipe.stop()


def _url(server):
    return f"http://127.0.0.1:{server.port}"


def _mean(frame):
    h, w = frame.shape[:2]
    return frame[h // 4:3 * h // 4, w // 4:3 * w // 4].reshape(-1, 3).mean(0)


def test_viewer_receives_the_stylised_stream(live):
    pipe, server, expected = live()

    async def go():
        v = Viewer(_url(server))
        assert await v.connect()
        assert await v.wait_frames(10)
        await v.close()
        return v.frames

    frames = asyncio.run(go())
    assert frames[-1].shape == (96, 128, 3)
    got, want = _mean(frames[-1]), _mean(expected["alpha"])
    assert np.abs(got - want).max() < 20, (got, want)
    assert np.abs(_mean(expected["beta"]) - want).max() > 20  # the check can tell styles apart


def test_style_switch_over_data_channel(live):
    pipe, server, expected = live()

    async def go():
        v = Viewer(_url(server))
        assert await v.connect()
        assert await v.wait_frames(3)
        for _ in range(100):
            if v.channel.readyState == "open":
                break
            await asyncio.sleep(0.05)
        v.channel.send(json.dumps({"style": "beta", "blend": "off"}))
        for _ in range(200):
            if pipe.stylizer.name == "beta":
                break
            await asyncio.sleep(0.05)
        assert await v.wait_frames(10)
        await v.close()
        return v

    v = asyncio.run(go())
    assert v.replies and v.replies[0]["blend"] == "off"
    assert np.abs(_mean(v.frames[-1]) - _mean(expected["beta"])).max() < 20


def _post(server, path, body: bytes, headers=None):
    req = urllib.request.Request(_url(server) + path, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


def _get(server, path):
    try:
        with urllib.request.urlopen(_url(server) + path, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_bad_offers_get_4xx_and_server_survives(live):
    pipe, server, _ = live()
    assert _post(server, "/offer", b"not json")[0] == 400
    assert _post(server, "/offer", b"[1, 2]")[0] == 400
    assert _post(server, "/offer", json.dumps({"sdp": 5, "type": "offer"}).encode())[0] == 400
    code, body = _post(server, "/offer", json.dumps({"sdp": "v=0\r\ngarbage",
                                                     "type": "offer"}).encode())
    assert code == 400 and "bad offer" in body["error"]
    assert _post(server, "/offer", b'{"sdp": "' + b"x" * 200_000 + b'"}')[0] == 413
    assert server.peers == set()

    async def go():
        v = Viewer(_url(server))
        assert await v.connect()
        assert await v.wait_frames(3)
        await v.close()

    asyncio.run(go())


def test_control_api_validates(live):
    pipe, server, _ = live()
    code, state = _post(server, "/api/control", json.dumps({"blend": "ema",
                                                            "strength": 0.5}).encode())
    assert code == 200 and state["blend"] == "ema" and state["strength"] == 0.5
    assert set(state["styles"]) >= {"alpha", "beta"}
    assert _post(server, "/api/control", b'{"style": "nope"}')[0] == 400
    assert _post(server, "/api/control", b'{"blend": "smear"}')[0] == 400
    assert _post(server, "/api/control", b'{"scale": 7}')[0] == 400
    code, state = _post(server, "/api/control", b'{"scale": 0.5}')
    assert code == 200 and state["scale"] == 0.5 and not state["auto_scale"]
    code, state = _post(server, "/api/control", b'{"scale": "auto"}')
    assert code == 200 and state["auto_scale"] and state["scale"] == 0.5  # nearest step


def test_only_known_assets_are_served(live):
    pipe, server, _ = live()
    code, page = _get(server, "/")
    assert code == 200 and b"viewer.js" in page
    assert _get(server, "/viewer.js")[0] == 200
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/web/__init__.py",
                 "/viewer.js/../../../../etc/hostname", "/static/index.html"):
        code, body = _get(server, path)
        assert code == 404 and b"root:" not in body, path


def test_token_is_required_when_set(live):
    pipe, server, _ = live(token="s3cret")
    assert _get(server, "/api/state")[0] == 401
    assert _get(server, "/?token=wrong")[0] == 401
    assert _get(server, "/?token=s3cret")[0] == 200
    assert _post(server, "/api/control", b'{"blend": "off"}')[0] == 401
    assert _post(server, "/api/control", b'{"blend": "off"}',
                 {"X-Streamnst-Token": "s3cret"})[0] == 200

    async def go():
        bad, good = Viewer(_url(server)), Viewer(_url(server), token="s3cret")
        assert not await bad.connect() and bad.status == 401
        assert await good.connect() and await good.wait_frames(3)
        await good.close()

    asyncio.run(go())


def test_non_loopback_binding_generates_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert WebRTCServer("127.0.0.1").token is None
    server = WebRTCServer("0.0.0.0")
    assert server.token and len(server.token) >= 16 and server.token in server.url


def test_viewer_limit_and_a_leaving_viewer_does_not_stop_others(live):
    pipe, server, _ = live(max_viewers=2)

    async def go():
        a, b, c = (Viewer(_url(server)) for _ in range(3))
        assert await a.connect() and await b.connect()
        assert not await c.connect()
        assert c.status == 503 and "viewer limit" in c.error
        assert await a.wait_frames(5) and await b.wait_frames(5)
        await a.close()
        for _ in range(100):
            if len(server.peers) == 1:
                break
            await asyncio.sleep(0.05)
        assert len(server.peers) == 1
        assert await b.wait_frames(15)  # keeps receiving
        d = Viewer(_url(server))
        assert await d.connect()  # the freed place can be taken again
        assert await d.wait_frames(3)
        await b.close()
        await d.close()

    asyncio.run(go())
