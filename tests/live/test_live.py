"""The real live pipeline: real sources, the stylizer, blending, and sinks, with the
virtual camera faked only at pyvirtualcam's own backend registry (no v4l2loopback here)."""

import json
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from cli_helpers import assert_clean_error, free_port, run_cli, wait_for_server
from media import make_video, probe
from recording_camera import RecordingCamera

from streamnst.core.errors import InputError
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live.outputs import OutputContext
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import FileSink, NullSink, VirtualCameraSink, open_sink
from streamnst.live.sources import PatternSource, VideoFileSource, WebcamSource, open_source
from streamnst.media.video import VideoReader
from streamnst.nets import UNet
from streamnst.nets.checkpoint_io import save_style


@pytest.fixture(autouse=True)
def _reset_cameras():
    RecordingCamera.instances.clear()


def _stylizer(path, **kw):
    return Stylizer(path, StylizerSettings(device="cpu", dtype="fp32", **kw))


def test_video_file_to_virtual_camera_frames_in_order_and_rgb(tmp_path, tiny_style):
    src = make_video(tmp_path / "in.mp4", frames=24, width=64, height=48, fps=20, audio=False)
    stylizer = _stylizer(tiny_style)
    with VideoReader(src) as r:
        expected = [stylizer.stylize(img) for img in r]
    source = VideoFileSource(src, loop=False)
    sink = VirtualCameraSink(backend="recording")
    summary = Pipeline(source, stylizer, [sink], BlendSettings(mode="off")).run()
    cam = RecordingCamera.instances[0]
    assert (cam.width, cam.height, cam.fps) == (64, 48, 20)
    assert cam.closed
    assert cam.frames and len(cam.frames) == summary.frames_out - sink.dropped
    matched = []
    for frame in cam.frames:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        errs = [np.abs(frame.astype(int) - e.astype(int)).mean() for e in expected]
        best = int(np.argmin(errs))
        assert errs[best] < 0.5, "received frame is not a stylised source frame (BGR swap?)"
        matched.append(best)
    assert matched == sorted(matched) and len(set(matched)) == len(matched)
    assert summary.captured == 24
    assert summary.frames_out + summary.dropped == 24


def test_several_sinks_at_once(tmp_path, tiny_style):
    out = tmp_path / "rec.mp4"
    source = PatternSource(80, 64, fps=25, frames=40)
    sinks = [VirtualCameraSink(backend="recording"), FileSink(out), NullSink()]
    summary = Pipeline(source, _stylizer(tiny_style), sinks).run()
    assert summary.frames_out > 10
    cam = RecordingCamera.instances[0]
    info = probe(out)
    assert info["frames"] == summary.sinks["rec.mp4"]["sent"] > 10
    assert len(cam.frames) == summary.sinks["vcam recording-cam"]["sent"]
    assert summary.sinks["null"]["sent"] == summary.frames_out
    # real-time recording: duration follows capture times, not a fixed rate
    assert abs(info["frames"] / float(info["fps"]) - 40 / 25) < 0.6


@pytest.mark.slow
def test_slow_stylizer_drops_frames_and_latency_stays_bounded(tiny_style, tmp_path):
    # a genuinely slow network: a wide U-Net on a large frame, fed at 60 fps
    slow = save_style(tmp_path / "wide.pth", UNet(width=48, res_convs=10).eval(), "unet",
                      style={"name": "wide"})
    source = PatternSource(640, 480, fps=60)
    pipe = Pipeline(source, _stylizer(slow), [NullSink()], BlendSettings(mode="off"),
                    duration=3.0)
    summary = pipe.run()
    assert summary.dropped > summary.frames_out  # most frames never stylised
    assert summary.captured - summary.dropped - summary.frames_out <= 2
    # with a queue, latency would grow through the run; without, it stays ~1 frame time
    assert summary.latency_p95_ms < 3 * summary.infer_ms_median + 100


def test_slow_sink_loses_frames_without_slowing_others(tiny_style):
    source = PatternSource(64, 48, fps=40)
    fast, slow = NullSink(), VirtualCameraSink(backend="slow")
    summary = Pipeline(source, _stylizer(tiny_style), [fast, slow], duration=2.5).run()
    assert slow.dropped > 0
    assert slow.sent < 0.5 * fast.sent
    assert fast.sent == summary.frames_out
    assert summary.fps > 20


def test_a_sink_failing_on_every_frame_is_reported_once_and_the_others_go_on(
        tiny_style, caplog):
    broken, null = VirtualCameraSink(backend="broken"), NullSink()
    pipe = Pipeline(PatternSource(64, 48, fps=30), _stylizer(tiny_style), [broken, null])
    with caplog.at_level("ERROR"):
        pipe.start()
        time.sleep(1.5)
        with pytest.raises(RuntimeError, match="rejected the frame"):
            pipe.stop()
    assert null.sent > 10 and broken.sent == 0
    assert sum("rejected the frame" in r.getMessage() for r in caplog.records) == 1


def _live_recording(tmp_path, style, *extra, settle=1.0):
    """`streamnst live` recording a pattern to tmp_path/live.mp4, started and running."""
    rec = tmp_path / "live.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "streamnst", "live", "--source",
                             "pattern:96x64@30", "--style", str(style), "-o", str(rec),
                             *extra, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".live.*")):
        time.sleep(0.05)
    time.sleep(settle)
    return proc, rec


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["running", "style switch"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_stops_cleanly_on_a_signal_in_every_phase(tmp_path, tiny_style, phase, sig):
    """Ctrl+C or SIGTERM while running and during a style switch (a key press can't reach
    a pipe, so the switch comes over the control API): a clean exit within a second of the
    signal, and the recording is valid."""
    import http.client

    port = free_port()
    proc, rec = _live_recording(tmp_path, tiny_style, "-o", "webrtc", "--port", str(port))
    try:
        if phase == "style switch":
            assert wait_for_server(port)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            # a bundled style: the API takes installed names only, never a path
            conn.request("POST", "/api/control", json.dumps({"style": "the_scream",
                                                             "blend": "ema"}),
                         {"Content-Type": "application/json"})
            assert conn.getresponse().status == 200
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:  # never leave a filter running behind a failed test: it would load the rest
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - t0 < 3.0  # one second for our threads, the rest is Python
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    assert probe(rec)["frames"] == json.loads(out)["sinks"]["live.mp4"]["sent"] > 5


@pytest.mark.slow
def test_cli_signal_at_start_up_while_waiting_for_a_camera(tmp_path, tiny_style):
    """Start-up: `--source webrtc` waits for a browser's camera; SIGTERM ends it at once."""

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamnst", "live", "--source", "webrtc",
                             "--port", str(port), "--style", str(tiny_style), "-o", "null"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_server(port)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_cli_second_signal_during_shutdown_still_finishes_the_recording(tmp_path, tiny_style):
    proc, rec = _live_recording(tmp_path, tiny_style)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)  # the second one lands while the pipeline is stopping
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert probe(rec)["frames"] == json.loads(out)["sinks"]["live.mp4"]["sent"] > 5


def test_style_switch_mid_stream(tmp_path, tiny_style):
    other = save_style(tmp_path / "other.pth", UNet(width=4, res_convs=2).eval(), "unet",
                       style={"name": "other"})
    stylizers = {"other": _stylizer(other)}
    source = PatternSource(64, 48, fps=30)
    sink = VirtualCameraSink(backend="recording")
    pipe = Pipeline(source, _stylizer(tiny_style), [sink], BlendSettings(mode="off"),
                    stylizer_factory=lambda name: stylizers[name]).start()
    time.sleep(1.0)
    before = pipe.stats.frames_out
    pipe.switch_style("other").join(5)
    time.sleep(1.0)
    summary = pipe.stop()
    assert summary.style == "other"
    assert summary.frames_out > before + 10  # frames kept flowing
    last = RecordingCamera.instances[0].frames[-1]
    src_img = source.picture(0)  # same background; the square moved: compare its row band
    b = stylizers["other"].stylize(src_img)
    a = _stylizer(tiny_style).stylize(src_img)
    band = slice(0, 10)  # top rows: the square never reaches them
    assert np.abs(last[band].astype(int) - b[band].astype(int)).mean() < 2
    assert np.abs(last[band].astype(int) - a[band].astype(int)).mean() > 5


def test_failed_style_switch_keeps_running(tiny_style):
    def factory(name):
        from streamnst.nets.checkpoint_io import load_style
        return Stylizer(load_style(name))

    pipe = Pipeline(PatternSource(32, 32, fps=30), _stylizer(tiny_style), [NullSink()],
                    stylizer_factory=factory).start()
    pipe.switch_style("no_such_style").join(5)
    time.sleep(0.3)
    summary = pipe.stop()
    assert "unknown style" in pipe.switch_error
    assert summary.style == "tiny" and summary.frames_out > 3


def test_camera_lost_is_retried_and_recovers(tmp_path, tiny_style):
    """A stream that stops answering is reopened; the pipeline runs on meanwhile."""
    clip = make_video(tmp_path / "cam.mp4", frames=10, width=32, height=32, fps=30,
                      audio=False)
    source = WebcamSource(str(clip), width=None, height=None, fps=30, retry_s=0.2)
    pipe = Pipeline(source, _stylizer(tiny_style), [NullSink()]).start()
    time.sleep(0.8)  # the 10-frame "camera" ends, is reopened, ends again...
    hidden = clip.rename(tmp_path / "away.mp4")  # ...then disappears
    time.sleep(0.8)
    stalled_at = source.captured
    assert pipe.error is None and not pipe.done.is_set()
    hidden.rename(clip)  # back again
    time.sleep(1.0)
    summary = pipe.stop()
    assert source.reopens >= 3
    assert source.captured > stalled_at
    assert summary.frames_out > 10


def test_source_error_surfaces_at_stop(tmp_path, tiny_style):
    clip = make_video(tmp_path / "c.mp4", frames=5, audio=False)
    source = VideoFileSource(clip, loop=True)
    clip.write_bytes(b"broken now")  # fails when the loop reopens it
    pipe = Pipeline(source, _stylizer(tiny_style), [NullSink()]).start()
    assert pipe.wait(10)
    with pytest.raises(InputError, match="not a video file FFmpeg can read"):
        pipe.stop()


def test_clean_shutdown_is_fast(tiny_style, tmp_path):
    sinks = [NullSink(), FileSink(tmp_path / "r.mp4")]
    pipe = Pipeline(PatternSource(64, 48, fps=30), _stylizer(tiny_style), sinks).start()
    time.sleep(0.5)
    t0 = time.monotonic()
    pipe.stop()
    assert time.monotonic() - t0 < 1.5
    names = {t.name for t in threading.enumerate()}
    assert not {"inference", "sink-null", "sink-r.mp4"} & names
    assert probe(tmp_path / "r.mp4")["frames"] > 3


def test_open_source_and_sink_specs(tmp_path):
    assert isinstance(open_source("pattern:32x24@10"), PatternSource)
    assert open_source("demo").size == (640, 480)
    with pytest.raises(InputError, match="neither a file nor one of"):
        open_source("nothing-here")
    with pytest.raises(InputError, match="pattern:640x360@30"):
        open_source("pattern:big")
    assert isinstance(open_sink(str(tmp_path / "x.mp4")), FileSink)
    from streamnst.core.errors import OutputError
    with pytest.raises(OutputError, match="unknown output"):
        open_sink("teleport")
    with pytest.raises(OutputError, match="exists"):
        (tmp_path / "y.mp4").write_bytes(b"keep")
        open_sink(str(tmp_path / "y.mp4"), OutputContext(overwrite=False))


@pytest.mark.slow
def test_cli_live_json_and_missing_vcam_driver(tmp_path, tiny_style):
    rec = tmp_path / "live.mp4"
    r = run_cli("live", "--source", "pattern:96x64@30", "--style", tiny_style, "-o", "vcam",
                "-o", rec, "--duration", "3", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    for key in ("frames_out", "fps", "latency_p50_ms", "latency_p95_ms", "dropped"):
        assert key in summary
    assert summary["frames_out"] > 10
    # the CPU it spent: more than nothing (the network runs), at most all cores' worth
    frame_s = 1.0 / summary["fps"]
    assert 0 < summary["cpu_ms_per_frame"] <= summary["cores"] * frame_s * 1000 * 1.5
    assert summary["max_side"] == 640  # the live default working-size cap
    assert summary["auto_scale"] and summary["target_fps"] == 30  # live default: keep up
    # the per-stage time budget, default flow blend included
    for stage in ("to_tensor", "network", "from_tensor", "flow", "blend", "send:live.mp4"):
        assert summary["stages_ms"][stage]["count"] > 5, stage
    text = " ".join(r.stderr.split())
    if sys.platform.startswith("linux"):
        assert "v4l2loopback" in text and "exclusive_caps=1" in text
        # said once, as one plain line: not again as a logging block
        assert r.stderr.count("warning:") == 1 and "WARNING" not in r.stderr, r.stderr
    assert probe(rec)["frames"] == summary["sinks"]["live.mp4"]["sent"]


def test_cli_live_with_no_usable_output_exits_at_once(tiny_style):
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    r = run_cli("live", "--source", "pattern:96x64@30", "--style", tiny_style, "-o", "window",
                "--duration", "30", env=env, timeout=60)
    assert_clean_error(r, "no output could be opened", "--output")
    assert r.returncode == 2


@pytest.mark.slow
def test_cli_live_says_when_it_falls_back_to_the_demo_clip(tiny_style):
    """No webcam on this machine: one line of ours, none of OpenCV's probe noise."""
    r = run_cli("live", "--style", tiny_style, "-o", "null", "--duration", "1", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "no webcam found; playing the bundled demo clip" in r.stderr
    assert "can't open camera" not in r.stderr and "VIDEOIO" not in r.stderr, r.stderr


@pytest.mark.slow
def test_cli_ctrl_c_stops_within_a_second(tmp_path, tiny_style):
    proc, rec = _live_recording(tmp_path, tiny_style, settle=1.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 3.0  # includes the interpreter's own exit
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert probe(rec)["frames"] == json.loads(out)["sinks"]["live.mp4"]["sent"] > 5


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (apt install xvfb)")
def test_screen_source_on_xvfb(tiny_style):
    display = ":97"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "320x240x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import os
        os.environ["DISPLAY"] = display
        time.sleep(1.0)
        source = open_source("screen:1@10,20,64,48")
        summary = Pipeline(source, _stylizer(tiny_style), [NullSink()], duration=1.0).run()
        assert source.size == (64, 48)
        assert summary.frames_out > 5
    finally:
        os.environ.pop("DISPLAY", None)
        xvfb.terminate()
        xvfb.wait(5)


@pytest.mark.skipif(subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode,
                    reason="needs unshare -m (root) to mount a tiny tmpfs")
@pytest.mark.slow
def test_recording_disk_fills_up_clean_stop_and_a_playable_file(tmp_path, tiny_style):
    """ENOSPC for real: the recording goes to a tmpfs in a private mount namespace, which a
    filler file fills up once the recording holds a few fragments (a fixed small disk filled
    at a moment that depended on the machine's speed: before the first fragment on one, never
    on another)."""
    disk, keep = tmp_path / "disk", tmp_path / "keep"
    disk.mkdir()
    keep.mkdir()
    cmd = [sys.executable, "-m", "streamnst", "live", "--source", "pattern:320x240@30",
           "--style", str(tiny_style), "-o", str(disk / "rec.mp4"), "-o", "null",
           "--duration", "30", "--scale", "1", "--json"]
    script = (f'mount -t tmpfs -o size=2m tmpfs {disk} || exit 1\n'
              f'("$@" > {keep}/out.json 2> {keep}/err.txt; echo $? > {keep}/rc) &\n'
              # every 0.1 s for up to 25 s: is the recording (under a hidden temporary name)
              # 30 KB yet? Its 2 s fragments hold a few KB each.
              f'for i in $(seq 250); do s=$(du -sb {disk} | cut -f1); '
              f'[ "$s" -ge 30000 ] && break; sleep 0.1; done\n'
              f'dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null\n'
              f'wait; rm -f {disk}/filler; cp {disk}/rec.mp4 {keep}/ 2>/dev/null; '
              f'ls -a {disk} > {keep}/ls.txt')
    subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *cmd], timeout=150, check=True)
    err = (keep / "err.txt").read_text()
    assert int((keep / "rc").read_text()) == 2, err
    assert "Traceback" not in err, err
    # while recording, or at the end when the write that fails is the last flush (a slow
    # machine's few frames can sit in the write buffers until then)
    assert "recording stopped after" in err or "recording ended early" in err, err
    summary_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(summary_lines) == 1  # reported once
    assert ".partial" not in (keep / "ls.txt").read_text()  # the file kept its own name
    # playable up to where the disk filled: cut back to its last whole fragment, every
    # frame left decodes
    import av

    with av.open(str(keep / "rec.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (320, 240)
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 10, frames


def test_a_recording_cut_inside_a_fragment_header_is_trimmed_to_its_whole_fragments(tmp_path):
    """The disk may fill mid-`moof`: FFmpeg then refuses the whole file. Trimming keeps
    every whole fragment playable."""
    import av
    from media import pattern

    from streamnst.media.video import VideoWriter, trim_fragmented_mp4

    path = tmp_path / "rec.mp4"
    writer = VideoWriter(path, 30, fragment_s=0.5, threads=1)
    for i in range(60):  # four fragments of 15 frames
        writer.write(pattern(i, 64, 48))
    writer.close()
    data = path.read_bytes()
    moofs = [i - 4 for i in range(len(data)) if data[i:i + 4] == b"moof"]
    assert len(moofs) == 4
    path.write_bytes(data[:moofs[-1] + 120])  # cut inside the last fragment's header

    def decoded() -> int:
        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))

    with pytest.raises(av.error.InvalidDataError):
        decoded()
    assert trim_fragmented_mp4(path) == moofs[-1]
    assert decoded() == 45
    assert trim_fragmented_mp4(path) == moofs[-1]  # a whole file is left as it is
