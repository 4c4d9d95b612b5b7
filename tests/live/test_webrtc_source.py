"""`--source webrtc`: a real aiortc client sends a generated camera track and gets the
painted stream back on the same connection."""

import asyncio
import threading
import time

import numpy as np
import pytest
from conftest import tinted_unet
from webrtc_client import Sender, Viewer

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live.pipeline import Pipeline
from streamnst.live.webrtc import WebRTCServer, WebRTCSink
from streamnst.live.webrtc_source import WebRTCSource
from streamnst.nets.checkpoint_io import save_style

pytestmark = pytest.mark.network

BLUE, RED = (30, 160, 220), (220, 60, 40)


@pytest.fixture
def camera_server(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMNST_HOME", str(tmp_path))
    path = save_style(tmp_path / "checkpoints" / "alpha.pth", tinted_unet((1.5, -1.0, 0.0)),
                      "unet", style={"name": "alpha"})

    def make(name="alpha"):
        return Stylizer(path, StylizerSettings(device="cpu", dtype="fp32"))

    server = WebRTCServer("127.0.0.1", 0, max_viewers=4)
    source = WebRTCSource(server)
    sink = WebRTCSink(server=server)
    pipe = Pipeline(source, make(), [sink], stylizer_factory=make)
    sink.server.pipeline = pipe  # the control handle a session binds
    # start() waits for the first camera frame, so it runs beside the test's client
    starter = threading.Thread(target=pipe.start, daemon=True)
    starter.start()
    deadline = time.monotonic() + 15
    while (server.port == 0 or server.loop is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    stylizer = make()

    def expected(colour) -> np.ndarray:
        img = np.empty((120, 160, 3), np.uint8)
        img[:] = colour
        return stylizer.stylize(img)[30:90, 40:120].reshape(-1, 3).mean(0)

    yield f"http://127.0.0.1:{server.port}", server, expected
    starter.join(15)
    pipe.stop()


def _mean(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[h // 4:3 * h // 4, w // 4:3 * w // 4].reshape(-1, 3).mean(0)


def _close(a, b, tol=25.0) -> bool:
    return bool(np.abs(np.asarray(a) - np.asarray(b)).max() <= tol)


@pytest.mark.slow
def test_a_sent_camera_comes_back_painted_and_one_sender_at_a_time(camera_server):
    url, server, expected = camera_server
    blue, red = expected(BLUE), expected(RED)
    assert not _close(blue, BLUE) and not _close(blue, red)  # painted differs from sent

    async def go() -> float:
        sender = Sender(url, BLUE)
        assert await sender.connect(), sender.error
        assert await sender.wait_frames(15)
        assert _close(_mean(sender.frames[-1]), blue), (_mean(sender.frames[-1]), blue)
        # round trip: change the camera's colour, time until the painted change comes back
        sender.camera.set_colour(RED)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        rtt = None
        while loop.time() < deadline and rtt is None:
            await asyncio.sleep(0.01)
            for frame, at in zip(sender.frames, sender.arrivals, strict=True):
                if at > sender.camera.changed_at and _close(_mean(frame), red):
                    rtt = at - sender.camera.changed_at
                    break
        assert rtt is not None and rtt < 2.0, rtt
        # a second camera is refused with a clear message; watching is still open
        second = Sender(url, BLUE)
        assert not await second.connect()
        assert second.status == 409 and "one at a time" in second.error
        viewer = Viewer(url)
        assert await viewer.connect() and await viewer.wait_frames(5)
        assert _close(_mean(viewer.frames[-1]), red)
        # the sender leaves: the last painted frame stays up, a new sender takes over
        await sender.close()
        for _ in range(100):
            if server.sender is None:
                break
            await asyncio.sleep(0.05)
        assert server.sender is None
        assert await viewer.wait_frames(1, timeout=3) or viewer.frames  # still showing
        third = Sender(url, BLUE)
        assert await third.connect(), third.error
        assert await third.wait_frames(10)
        assert _close(_mean(third.frames[-1]), blue)
        assert await viewer.wait_frames(5) and _close(_mean(viewer.frames[-1]), blue)
        await third.close()
        await viewer.close()
        return rtt

    rtt = asyncio.run(go())
    print(f"round trip, camera change to painted change: {rtt * 1000:.0f} ms")


def test_a_camera_is_refused_where_the_server_takes_none(tmp_path):
    server = WebRTCServer("127.0.0.1", 0)
    server.start()
    try:
        async def go():
            sender = Sender(f"http://127.0.0.1:{server.port}", BLUE)
            assert not await sender.connect()
            assert sender.status == 400 and "--source webrtc" in sender.error

        asyncio.run(go())
    finally:
        server.stop()
