"""Outputs whose server misbehaves (issue 49, items 1-3): a media server that accepts and
then says nothing, a receiver that stops reading, a WHIP endpoint whose answer is not SDP.
Each is a real server on loopback; the filter must go on, stop when asked and finish its
recordings."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import nginx_rtmp
import numpy as np
import pytest
from cli_helpers import free_port, run_cli, wait_until
from media import probe

from streamnst.engine.stylizer import StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live.session import LiveConfig, build_session

pytestmark = pytest.mark.network


class StalledServer:
    """Accepts TCP connections on loopback and never reads or writes a byte."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def stalled():
    server = StalledServer()
    yield server
    server.close()


@pytest.mark.skipif(not nginx_rtmp.available(), reason="needs nginx-light and "
                    "libnginx-mod-rtmp (CI installs them)")
def test_reconnecting_to_a_stalled_server_never_freezes_the_filter(nginx, still, tiny_style):
    config = LiveConfig(str(still), (nginx.url("k"), "null"), str(tiny_style), scale=1.0,
                        stylizer=StylizerSettings(device="cpu", dtype="fp32"),
                        blend=BlendSettings(mode="off"))
    pipe = build_session(config).start()
    stalled = None
    try:
        rtmp, null = pipe.sinks
        assert wait_until(lambda: rtmp.encoded > 10, 30)
        nginx.kill()
        stalled = StalledServer(nginx.port)  # the server comes back mute
        assert wait_until(lambda: rtmp.outages, 10)
        gaps, last, seen = [], time.monotonic(), null.sent
        end = last + 8.0  # past several reconnection attempts (1, 2, 4 s apart)
        while time.monotonic() < end:
            time.sleep(0.02)
            if null.sent != seen:
                now = time.monotonic()
                gaps.append(now - last)
                last, seen = now, null.sent
        assert stalled.accepted  # it did try the mute server
        assert max(gaps) < 1.0, max(gaps)  # FFmpeg's handshake holds the GIL: 3 s stops
    finally:
        pipe.stop()
        if stalled is not None:
            stalled.close()


def _live(*args: str, tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamnst", "live", *args, "--json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_a_stalled_rtmp_server_blocks_neither_the_other_outputs_nor_the_end(
        stalled, tmp_path, tiny_style):
    rec = tmp_path / "r.mp4"
    t0 = time.monotonic()
    r = run_cli("live", "--source", "pattern:160x90@10", "--style", tiny_style,
                "--output", "null", "--output", f"rtmp://127.0.0.1:{stalled.port}/live/k",
                "--output", rec, "--duration", "4", "--json", timeout=90)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert time.monotonic() - t0 < 45  # the handshake gave up; before, it waited forever
    summary = json.loads(r.stdout)
    problem, = summary["sink_problems"]
    assert "cannot publish" in problem and "timed out" in problem
    assert stalled.accepted  # it did connect: the wait was in the handshake
    assert probe(rec)["frames"] == summary["sinks"]["r.mp4"]["sent"] > 10


def test_a_signal_while_an_output_connects_ends_the_filter_at_once(stalled, tmp_path,
                                                                   tiny_style):
    proc = _live("--source", "pattern:160x90@10", "--style", str(tiny_style), "--output",
                 "null", "--output", f"rtmp://127.0.0.1:{stalled.port}/live/k",
                 tmp_path=tmp_path)
    try:
        assert wait_until(lambda: stalled.accepted, 60)  # inside the RTMP handshake now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    # FFmpeg holds the GIL while it shakes hands: the signal is seen once it gives up
    assert time.monotonic() - t0 < 3 + 4.0, err  # before: SIGTERM and SIGINT did nothing
    assert proc.returncode in (0, 130) and "Traceback" not in err, err


def _noise_video(path: Path, frames: int = 60, fps: int = 30) -> Path:
    """Noise: the costliest picture to encode, so a stalled receiver's buffers fill fast."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (240, 320, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs the ffmpeg command")
def test_a_receiver_that_stops_reading_neither_keeps_the_filter_up_nor_loses_the_recording(
        tmp_path, tiny_style):
    port = free_port()
    receiver = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-listen", "1", "-i",
                                 f"rtmp://127.0.0.1:{port}/live/k", "-c", "copy", "-f", "flv",
                                 "-y", str(tmp_path / "x.flv")])
    noise = _noise_video(tmp_path / "noise.mp4")
    rec = tmp_path / "rec.mp4"
    try:
        time.sleep(1.0)  # the receiver listens
        proc = _live("--source", str(noise), "--style", str(tiny_style), "--output", "null",
                     "--output", f"rtmp://127.0.0.1:{port}/live/k", "--output", str(rec),
                     "--bitrate", "50000", "--duration", "12", tmp_path=tmp_path)
        assert wait_until(lambda: (tmp_path / "x.flv").is_file()
                          and (tmp_path / "x.flv").stat().st_size > 500_000, 60)
        receiver.send_signal(signal.SIGSTOP)  # it stops reading: our writes block
        t0 = time.monotonic()
        try:
            out, err = proc.communicate(timeout=60)  # before: it never ended
        finally:
            proc.kill()
    finally:
        receiver.kill()
    assert time.monotonic() - t0 < 40, err
    assert proc.returncode == 0 and "Traceback" not in err, err
    summary = json.loads(out)
    assert probe(rec)["frames"] == summary["sinks"]["rec.mp4"]["sent"] > 50
    assert not list(tmp_path.glob("*.partial*"))


BAD_ANSWERS = {
    "short": b"v=0\r\n",
    "badm": (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
             b"m=video notaport UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\n"),
    "bytes": b"v=0\r\n\xff\xfe\x80 not utf-8 \xc3\x28\r\n",
}


class BadWhip(BaseHTTPRequestHandler):
    """A WHIP endpoint that accepts the offer (201, a Location) and answers nonsense."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = BAD_ANSWERS[self.path.strip("/")]
        self.send_response(201)
        self.send_header("Location", f"/session{self.path}")
        self.send_header("Content-Type", "application/sdp")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_whip_answer_that_is_not_sdp_is_one_problem_line_and_the_rest_goes_on(tiny_style):
    server = ThreadingHTTPServer(("127.0.0.1", 0), BadWhip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"whip+http://127.0.0.1:{server.server_port}"
    try:
        r = run_cli("live", "--source", "pattern:160x90@15", "--style", tiny_style,
                    "--output", "null", *[a for name in BAD_ANSWERS
                                          for a in ("--output", f"{base}/{name}")],
                    "--duration", "3", "--json", timeout=120)
    finally:
        server.shutdown()
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr  # before: exit 1
    summary = json.loads(r.stdout)
    assert len(summary["sink_problems"]) == 3
    assert all("not usable SDP" in p for p in summary["sink_problems"])
    assert summary["sinks"]["null"]["sent"] > 20
    assert "never retrieved" not in r.stderr
