"""`--output rtmp://...` against a real media server: nginx with Debian's RTMP module,
started by the tests in a temporary folder on a loopback port. The stream is pulled back
by a separate FFmpeg client (PyAV) and checked frame by frame; the server is killed and
restarted mid-stream."""

import logging
import time
from pathlib import Path

import nginx_rtmp
import numpy as np
import pytest
from cli_helpers import assert_clean_error, free_port, run_cli, wait_until
from media import make_video

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live.broadcast import RtmpSink, mask_key
from streamnst.live.session import LiveConfig, build_session
from streamnst.media.imageio import read_image

pytestmark = [pytest.mark.network, pytest.mark.skipif(
    not nginx_rtmp.available(), reason="needs nginx-light and libnginx-mod-rtmp (CI installs "
                                       "them)")]
KEY = "s3cret-key"
FAST = StylizerSettings(device="cpu", dtype="fp32")


def _session(url: str, still: Path, style: Path):
    config = LiveConfig(str(still), (url, "null"), str(style), scale=1.0, stylizer=FAST,
                        blend=BlendSettings(mode="off"))
    return build_session(config)


def test_the_published_stream_is_pulled_back_painted(nginx, still, tiny_style):
    pipe = _session(nginx.url(KEY), still, tiny_style)
    pipe.start()
    try:
        frames = nginx_rtmp.pull(nginx.url(KEY), 20)
        sound, _ = nginx_rtmp.pull_sound(nginx.url(KEY), 1.0)
    finally:
        summary = pipe.stop()
    assert len(sound) and np.sqrt((sound ** 2).mean()) < 0.01  # a still has no sound
    assert len(frames) == 20 and frames[0].shape == (240, 320, 3)
    painted = Stylizer(tiny_style, FAST).stylize(read_image(still)).astype(float)
    original = read_image(still).astype(float)
    last = frames[-1].astype(float)
    assert np.abs(last - painted).mean() < 6  # the network's picture, through H.264
    assert np.abs(last - original).mean() > 3 * np.abs(last - painted).mean()
    rtmp = next(name for name in summary.sinks if name.startswith("rtmp"))
    assert KEY not in rtmp and "****" in rtmp and summary.sinks[rtmp]["sent"] > 20


def test_a_video_files_sound_goes_out_with_the_pictures(nginx, tmp_path, tiny_style):
    tone = make_video(tmp_path / "tone.mp4", frames=45, width=160, height=120)  # 440 Hz
    pipe = _session(nginx.url(KEY), tone, tiny_style)
    pipe.start()
    try:
        sound, rate = nginx_rtmp.pull_sound(nginx.url(KEY), 2.0)
    finally:
        pipe.stop()
    assert len(sound) >= 2 * rate and rate == 48000
    assert abs(nginx_rtmp.loudest_hz(sound, rate) - 440) < 5
    assert np.sqrt((sound ** 2).mean()) > 0.1  # the tone's level (0.3 peak), not silence


def test_a_server_restart_is_ridden_over_and_the_other_outputs_lose_nothing(
        nginx, still, tiny_style, caplog):
    pipe = _session(nginx.url(KEY), still, tiny_style)
    with caplog.at_level(logging.WARNING):
        pipe.start()
        try:
            assert len(nginx_rtmp.pull(nginx.url(KEY), 5)) == 5
            rtmp, null = pipe.sinks
            nginx.kill()
            sent = null.sent
            assert wait_until(lambda: rtmp.outages, 10) and rtmp.outages == 1
            time.sleep(1.5)  # the server stays down a while; the filter goes on
            assert null.sent > sent + 15 and pipe.stats.frames_out > 0
            nginx.start()
            assert wait_until(lambda: rtmp.reconnects, 20) and rtmp.reconnects == 1
            assert len(nginx_rtmp.pull(nginx.url(KEY), 5)) == 5  # viewers get the stream again
        finally:
            summary = pipe.stop()
    lost = [r for r in caplog.records if "connection lost" in r.getMessage()]
    assert len(lost) == 1  # one line for the outage, not one per frame or per retry
    assert KEY not in caplog.text and summary.frame_failures == 0
    assert summary.sinks["null"]["dropped"] <= 2


def test_a_refused_publish_is_a_one_line_error(nginx):
    r = run_cli("live", "--source", "pattern:64x48@15", "--output",
                nginx.url(KEY, "closed"), "--duration", "2")
    assert_clean_error(r, "cannot publish", "/closed/****")
    assert KEY not in r.stderr + r.stdout


def test_no_server_and_a_bad_url_are_one_line_errors_with_the_key_masked(tmp_path):
    port = free_port()  # nothing listens there
    r = run_cli("live", "--source", "pattern:64x48@15", "--output",
                f"rtmp://127.0.0.1:{port}/live/{KEY}", "--duration", "2")
    assert_clean_error(r, "cannot publish", f"rtmp://127.0.0.1:{port}/live/****")
    assert KEY not in r.stderr + r.stdout
    r = run_cli("live", "--source", "pattern:64x48@15", "--output", "rtmp://example.org",
                "--duration", "2")
    assert_clean_error(r, "rtmp://HOST[:PORT]/APP/STREAM_KEY")


def test_the_key_is_masked_in_every_name():
    assert mask_key("rtmp://a.example:1935/live2/abc?x=1") == "rtmp://a.example:1935/live2/****"
    # the last non-empty part, whatever follows it (a trailing / showed the key)
    assert mask_key("rtmps://b.example/app/") == "rtmps://b.example/****/"
    assert mask_key("rtmp://h/app/KEY/") == "rtmp://h/app/****/"
    sink = RtmpSink(f"rtmps://live.example.com/app/{KEY}")
    assert KEY not in sink.name
