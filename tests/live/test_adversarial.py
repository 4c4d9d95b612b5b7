"""The holes an adversarial pass found in the server and the live path, each replayed
against the real thing: a running server on loopback, real sockets, real frames."""

import logging
import socket
import time

import numpy as np
import pytest
from conftest import tinted_unet
from test_http_guard import request

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender, BlendSettings
from streamnst.live import http_guard, http_server
from streamnst.live.control import LiveControl
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import Sink
from streamnst.live.sources import PatternSource
from streamnst.live.webrtc import MAX_OFFER_BYTES, WebRTCServer
from streamnst.nets.checkpoint_io import save_style

pytestmark = pytest.mark.network

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server():
    s = WebRTCServer("127.0.0.1", 0)
    s.start()
    yield s
    s.stop()


@pytest.mark.parametrize("path", ["/api/control", "/offer"])
def test_deeply_nested_json_is_a_400(server, path):
    body = "[" * 1100 + "]" * 1100
    status, headers, text = request(server, "POST", path, body=body, headers=JSON)
    assert status == 400 and b"nested too deeply" in text
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_a_deep_data_channel_message_is_ignored_and_the_peer_kept(server, caplog):
    with caplog.at_level(logging.WARNING):
        reply = server._apply_control_text("[" * 5000 + "]" * 5000)
    assert "nested too deeply" in reply["error"]
    assert "nested too deeply" in caplog.text


@pytest.mark.parametrize("charset", ["bogus", "rot13", "hex", "zlib"])
def test_an_unknown_charset_is_a_415(server, charset):
    status, _, text = request(server, "POST", "/api/control", body='{"blend": "ema"}',
                              headers={"Content-Type": f"application/json; charset={charset}"})
    assert status == 415, text


def test_aiohttps_own_errors_carry_the_security_headers(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")  # duplicate Host
        reply = sock.recv(4096).decode("latin-1")
    assert reply.split("\r\n")[0].endswith("400 Bad Request"), reply
    assert "X-Content-Type-Options: nosniff" in reply
    assert "Content-Security-Policy:" in reply and "Referrer-Policy: no-referrer" in reply


def test_an_oversized_content_length_is_refused_before_reading(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = (f"POST /api/control HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {MAX_OFFER_BYTES * 10}"
                "\r\n\r\n")
        sock.sendall(head.encode())  # and no body at all: the answer must not wait for it
        reply = sock.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply


def test_slow_clients_are_cut_off(server, monkeypatch):
    monkeypatch.setattr(http_server, "HEADER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(http_guard, "BODY_TIMEOUT_S", 0.5)
    # a new server, so its connections see the short deadlines
    s = WebRTCServer("127.0.0.1", 0)
    s.start()
    try:
        head_only = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        head_only.sendall(b"GET / HTTP/1.1\r\nHost: 127")  # never finishes its head
        body_slow = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        body_slow.sendall((f"POST /api/control HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
                           "Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{")
                          .encode())
        t0 = time.monotonic()
        assert head_only.recv(4096) == b""  # closed by the server
        assert body_slow.recv(4096).decode("latin-1").startswith("HTTP/1.1 408")
        assert time.monotonic() - t0 < 4.0
        head_only.close()
        body_slow.close()
    finally:
        s.stop()


def test_connections_are_capped(server, monkeypatch):
    monkeypatch.setattr(http_server, "MAX_CONNECTIONS", 5)
    s = WebRTCServer("127.0.0.1", 0)
    s.start()
    socks = []
    try:
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        time.sleep(0.3)
        closed = 0
        for sock in socks:
            sock.setblocking(False)
            try:
                closed += sock.recv(1) == b""
            except BlockingIOError:
                pass
        assert closed == 3
        status, _, _ = request(server, "GET", "/api/state")  # the other server still answers
        assert status == 200
    finally:
        for sock in socks:
            sock.close()
        s.stop()


def test_a_client_leaving_mid_body_is_one_quiet_line(server, caplog):
    with caplog.at_level(logging.DEBUG, logger="streamnst"):
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall((f"POST /offer HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                              "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                              '{"sdp": "v=0').encode())
        time.sleep(0.5)
    assert "Traceback" not in caplog.text
    ours = [r for r in caplog.records if r.name.startswith(("streamnst", "aiohttp"))]
    assert not [r for r in ours if r.levelno >= logging.ERROR], caplog.text
    assert request(server, "GET", "/api/state")[0] == 200


class _Kept(Sink):
    """Keeps the last frame it is sent."""

    def send(self, frame):
        self.last = frame


class _Pipe:
    """The part of a pipeline LiveControl reads, for type checks that change nothing."""

    def __init__(self):
        self.blend_settings = BlendSettings()
        self.scales = []

    def set_scale(self, value):
        self.scales.append(value)


@pytest.mark.parametrize("body, field", [({"scale": True}, "scale"),
                                         ({"strength": "0.5"}, "strength"),
                                         ({"blend": 1}, "blend"), ({"style": ["a"]}, "style"),
                                         ({"strength": False}, "strength")])
def test_the_json_api_validates_types(body, field):
    pipe = _Pipe()
    reply = LiveControl(pipe).apply(body)
    assert field in reply["error"] and not pipe.scales


def test_a_blend_change_keeps_every_other_setting():
    class P(_Pipe):
        def set_blend(self, settings):
            self.blend_settings = settings

    pipe = P()
    pipe.blend_settings = BlendSettings(mode="flow", strength=0.5, cut_threshold=0.2,
                                        photo_tolerance=40.0)
    LiveControl(pipe).set_blend(strength=0.8)
    assert pipe.blend_settings == BlendSettings(mode="flow", strength=0.8, cut_threshold=0.2,
                                                photo_tolerance=40.0)


@pytest.mark.parametrize("size", [(2, 2), (8, 8), (11, 30), (160, 120)])
def test_frames_of_any_size_go_through_the_flow_blend(size):
    w, h = size
    blender = Blender(BlendSettings(mode="flow", strength=0.7))
    rng = np.random.default_rng(0)
    for _ in range(3):
        frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        out = blender(frame, frame[..., ::-1].copy())
        assert out.shape == (h, w, 3)


def test_a_tiny_camera_does_not_stop_the_live_filter(tmp_path):
    style = save_style(tmp_path / "t.pth", tinted_unet((1.0, -1.0, 0.5)), "unet",
                       style={"name": "t", "canvas": 4.0})
    sink = _Kept()
    pipe = Pipeline(PatternSource(8, 8, fps=30),
                    Stylizer(style, StylizerSettings(device="cpu", dtype="fp32")), [sink],
                    BlendSettings(mode="flow"), max_frames=20)
    summary = pipe.run()
    assert summary.frames_out == 20 and summary.frame_failures == 0
    assert sink.last.image.shape == (8, 8, 3)


def test_the_token_url_is_told_as_soon_as_the_server_listens():
    told = []
    s = WebRTCServer("0.0.0.0", 0)
    s.on_listening = told.append
    s.start()
    try:
        assert told == [s.url] and f"token={s.token}" in told[0]
    finally:
        s.stop()


def test_a_chunked_body_past_the_cap_is_a_413_with_our_headers(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall((f"POST /api/control HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                     .encode())
        chunk = b"x" * 16384
        try:
            for _ in range(MAX_OFFER_BYTES // len(chunk) + 2):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the last chunk
        reply = sock.recv(4096).decode("latin-1")
    assert " 413 " in reply.split("\r\n")[0], reply
    assert "X-Content-Type-Options: nosniff" in reply
