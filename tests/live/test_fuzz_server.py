"""A seeded fuzz of the WebRTC server: 1,200 malformed or random requests (SDP, JSON,
headers, methods, paths, sizes). Every one gets a 4xx or a 2xx, never a 5xx or a hang,
and the server's threads and open files stay flat."""

import http.client
import json
import os
import random
import threading

import cv2
import numpy as np
import pytest
from conftest import tinted_unet

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live.pipeline import Pipeline
from streamnst.live.sources import ImageSource
from streamnst.live.webrtc import WebRTCSink
from streamnst.nets.checkpoint_io import save_style

pytestmark = pytest.mark.network

REQUESTS = 1200
SDP_LINES = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
             "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:0",
             "a=recvonly", "a=rtpmap:96 VP8/90000", "a=ice-ufrag:abcd",
             "a=ice-pwd:0123456789012345678901", "a=fingerprint:sha-256 00:11",
             "a=setup:actpass", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel"]


def _value(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "none", "bool"] + (["list", "dict"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, -1, 1, 2**63, -(2**70), rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.5, -0.1, 1e308, 2.0, 0.95, 0.96, 1e-9])
    if kind == "str":
        return rng.choice(["", "auto", "flow", "ema", "off", "beta", "alpha", "x" * 5000,
                           "../../etc/passwd", "\u00e9\u4e2d\U0001f600", "\x00"])
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        keys = ["style", "blend", "strength", "scale", "sdp", "type", "x"]
        return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return None if kind == "none" else rng.choice([True, False])


def _sdp(rng: random.Random) -> str:
    lines = [line for line in SDP_LINES if rng.random() < 0.8]
    rng.shuffle(lines) if rng.random() < 0.3 else None
    if rng.random() < 0.3:
        lines.insert(rng.randint(0, len(lines)), "a=" + "z" * rng.randint(1, 3000))
    sep = rng.choice(["\r\n", "\n", "\r"])
    return sep.join(lines) + sep


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return b""
    if kind == 1:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))
    if kind == 2:
        return json.dumps(_value(rng)).encode()
    if kind == 3:
        return json.dumps({"sdp": _sdp(rng), "type": rng.choice(["offer", "answer", 1])}).encode()
    if kind == 4:
        return b"{" * rng.randint(1, 5000)  # deep or unterminated JSON
    if kind == 7:  # deep and well-formed: Python's parser runs out of stack
        depth = rng.randint(900, 5000)
        return b"[" * depth + b"]" * depth
    if kind == 5:
        return b"x" * rng.choice([70_000, 200_000])  # over the body cap
    return json.dumps({"strength": _value(rng), "blend": _value(rng),
                       "scale": _value(rng), "style": _value(rng)}).encode()


def _request(rng: random.Random, port: int) -> tuple[str, str, dict, bytes]:
    method = rng.choice(["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                         "HEAD"])
    path = rng.choice(["/", "/offer", "/api/control", "/api/state", "/viewer.js",
                       "/viewer.css", "/nope", "/api/../offer", "/%00", "/" + "a" * 3000,
                       "/api/control?token=x&x=" + "y" * 500, "/offer?" + "q" * 100])
    host = rng.choice([f"127.0.0.1:{port}"] * 6 + [f"localhost:{port}", "evil.example",
                                                  f"[::1]:{port}", "", "127.0.0.1:1"])
    headers = {"Host": host}
    ctype = rng.choice(["application/json", "application/json; charset=utf-8", "text/plain",
                        None, "multipart/form-data; boundary=x", "application/json" + "x" * 50,
                        "application/json; charset=bogus", "application/json; charset=rot13",
                        "application/json; charset=hex", "application/json; charset=zlib"])
    if ctype is not None:
        headers["Content-Type"] = ctype
    if rng.random() < 0.3:
        headers["Origin"] = rng.choice([f"http://127.0.0.1:{port}", "http://evil.example",
                                        "null", "garbage"])
    if rng.random() < 0.1:
        headers["X-Streamnst-Token"] = "t" * rng.randint(0, 300)
    body = _body(rng) if method in ("POST", "PUT", "PATCH") or rng.random() < 0.1 else b""
    return method, path, headers, body


def _send(port: int, method: str, path: str, headers: dict, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionResetError, BrokenPipeError):
        return 413  # the server may cut an oversized body off mid-upload: a refusal
    finally:
        conn.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_thousand_malformed_requests_get_4xx_and_leave_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMNST_HOME", str(tmp_path))
    style = save_style(tmp_path / "checkpoints" / "alpha.pth", tinted_unet((1.5, -1, 0)),
                       "unet", style={"name": "alpha"})
    img = np.full((64, 96, 3), 120, np.uint8)
    cv2.imwrite(str(tmp_path / "flat.png"), img)
    sink = WebRTCSink(port=0, max_viewers=2)
    pipe = Pipeline(ImageSource(tmp_path / "flat.png", fps=10),
                    Stylizer(style, StylizerSettings(device="cpu", dtype="fp32")), [sink],
                    stylizer_factory=lambda n: Stylizer(tmp_path / "checkpoints" / f"{n}.pth",
                                                        StylizerSettings(device="cpu")))
    sink.server.pipeline = pipe  # the control handle a session binds
    pipe.start()
    port = sink.server.port
    try:
        rng = random.Random(20261130)
        for _ in range(20):  # warm up: first-use allocations are not leaks
            _send(port, *_request(rng, port))
        threads, fds = threading.active_count(), _open_fds()
        failures, seen = [], set()
        for _ in range(REQUESTS):
            req = _request(rng, port)
            status = _send(port, *req)
            seen.add(status)
            if status >= 500:
                failures.append((status, req[0], req[1], req[2], req[3][:200]))
        assert not failures, failures[:5]
        # the fuzz reached every layer: routing, the guard, the handlers' own checks
        assert {200, 400, 403, 404, 405, 413, 415, 421} <= seen, sorted(seen)
        # still responsive, and nothing piled up
        assert _send(port, "GET", "/api/state", {"Host": f"127.0.0.1:{port}"}, b"") == 200
        assert threading.active_count() <= threads + 2, (threads, threading.enumerate())
        assert _open_fds() <= fds + 8, (fds, _open_fds())
        assert len(sink.server.peers) <= sink.server.max_viewers
        assert pipe.error is None
    finally:
        pipe.stop()
