import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from cli_helpers import assert_clean_error, run_cli
from media import make_video, probe

from streamnst.media.imageio import read_image
from streamnst.offline.stylize_file import render_file


@pytest.mark.parametrize("suffix,video,audio", [(".mp4", "h264", "aac"),
                                                 (".webm", "vp9", "opus")])
@pytest.mark.slow
def test_video_keeps_frames_fps_and_audio(tmp_path, tiny_style, suffix, video, audio):
    src = make_video(tmp_path / "in.mp4", frames=20, width=66, height=50, fps=15)
    dst = tmp_path / f"out{suffix}"
    r = run_cli("stylize", src, dst, "--style", tiny_style)
    assert r.returncode == 0, r.stderr
    info = probe(dst)
    assert info["frames"] == 20
    assert info["fps"] == 15
    assert (info["width"], info["height"]) == (66, 50)
    assert info["video_codec"] == video
    assert info["audio_codec"] == audio
    assert abs(info["audio_seconds"] - 20 / 15) < 0.15
    # stylised, not copied: differs from the source frames
    diff = np.abs(info["images"][5].astype(int) - probe(src)["images"][5].astype(int)).mean()
    assert diff > 5


@pytest.mark.slow
def test_gif_output_loops_keeps_size_timing_and_the_stylised_look(tmp_path, tiny_style):
    from PIL import Image, ImageSequence

    src = make_video(tmp_path / "in.mp4", frames=24, width=66, height=50, fps=30)
    dst = tmp_path / "out.gif"
    r = run_cli("stylize", src, dst, "--style", tiny_style)
    assert r.returncode == 0, r.stderr
    assert not list(tmp_path.glob(".out.*"))  # no partial file left behind
    ref = tmp_path / "ref.mp4"
    assert run_cli("stylize", src, ref, "--style", tiny_style).returncode == 0
    expected = probe(ref)["images"]
    with Image.open(dst) as gif:
        assert gif.format == "GIF" and gif.size == (66, 50)
        assert gif.info.get("loop") == 0  # loops forever
        frames = [(np.asarray(f.convert("RGB")).astype(int), f.info["duration"])
                  for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 12  # 15 fps: every other frame of the 30 fps source
    total_ms = sum(d for _, d in frames)
    assert abs(total_ms - 24 / 30 * 1000) <= 10, total_ms  # the clip keeps its length
    # each frame is the stylised frame (within palette and codec error), not the input:
    # GIF frame 5 shows source frame 10
    assert np.abs(frames[5][0] - expected[10].astype(int)).mean() < 12
    assert np.abs(frames[5][0] - probe(src)["images"][10].astype(int)).mean() > 5


@pytest.mark.slow
def test_mkv_with_pcm_audio_is_transcoded(tmp_path, tiny_style):
    import av
    src = tmp_path / "in.mkv"
    c = av.open(str(src), mode="w")
    v = c.add_stream("libx264", rate=10)
    v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
    a = c.add_stream("pcm_s16le", rate=44100)
    a.layout = "mono"
    for i in range(10):
        f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 20, np.uint8), format="rgb24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode(None):
        c.mux(p)
    n = 44100
    for start in range(0, n, 1024):
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16",
                                        layout="mono")
        af.sample_rate, af.pts = 44100, start
        for p in a.encode(af):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)
    c.close()
    dst = tmp_path / "out.mp4"
    r = run_cli("stylize", src, dst, "--style", tiny_style)
    assert r.returncode == 0, r.stderr
    info = probe(dst)
    assert info["frames"] == 10 and info["audio_codec"] == "aac"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gray", "alpha", "rgb_webp"])
def test_images_gray_alpha_webp(tmp_path, tiny_style, kind):
    if kind == "gray":
        src = tmp_path / "g.png"
        cv2.imwrite(str(src), np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1)))
    elif kind == "alpha":
        src = tmp_path / "a.png"
        bgra = np.zeros((30, 40, 4), np.uint8)
        bgra[..., 2], bgra[..., 3] = 255, 128
        cv2.imwrite(str(src), bgra)
        assert read_image(src)[0, 0].tolist() == [255, 127, 127]  # red over white
    else:
        src = tmp_path / "c.webp"
        cv2.imwrite(str(src), np.full((30, 40, 3), 90, np.uint8))
    dst = tmp_path / "out.jpg"
    r = run_cli("stylize", src, dst, "--style", tiny_style)
    assert r.returncode == 0, r.stderr
    assert read_image(dst).shape == (30, 40, 3)


@pytest.mark.slow
def test_existing_output_is_not_clobbered(tmp_path, tiny_style):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.zeros((16, 16, 3), np.uint8))
    dst = tmp_path / "out.png"
    dst.write_bytes(b"precious")
    r = run_cli("stylize", src, dst, "--style", tiny_style)
    assert_clean_error(r, "exists", "--overwrite")
    assert dst.read_bytes() == b"precious"
    r = run_cli("stylize", src, dst, "--style", tiny_style, "--overwrite")
    assert r.returncode == 0 and read_image(dst).shape == (16, 16, 3)


@pytest.mark.slow
def test_bad_inputs_give_one_line_errors(tmp_path, tiny_style):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.zeros((16, 16, 3), np.uint8))
    assert_clean_error(run_cli("stylize", tmp_path / "none.mp4", tmp_path / "o.mp4",
                               "--style", tiny_style), "file not found")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all")
    r = run_cli("stylize", fake, tmp_path / "o.mp4", "--style", tiny_style,
                env={"COLUMNS": "40"})
    assert_clean_error(r, "not a video file FFmpeg can read")
    # one line, unwrapped even on a narrow terminal, no errno, no progress bar before it
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: "), r.stderr
    assert "Errno" not in r.stderr and "0/?" not in r.stderr
    assert not (tmp_path / "o.mp4").exists()
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.mp4", "--style", tiny_style),
                       "image output")
    assert_clean_error(run_cli("stylize", fake, tmp_path / "o.avi", "--style", tiny_style),
                       ".mp4")
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.png", "--style", "no_such_style"),
                       "unknown style 'no_such_style'")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(tiny_style.read_bytes()[:100])
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.png", "--style", broken),
                       "broken.pth", "truncated")
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.png", "--style", tiny_style,
                               "--scale", "3"), "scale")
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.png", "--style", tiny_style,
                               "--scale", "auto"), "only `streamnst live`")
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.png", "--style", tiny_style,
                               "--scale", "half"), "neither a number")
    assert_clean_error(run_cli("stylize", img, tmp_path / "o.png", "--style", tiny_style,
                               "--scale", "0"), "scale must be between")
    assert list(tmp_path.glob("o.*")) == []


def test_error_mid_video_leaves_no_file(tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=10)
    dst = tmp_path / "out.mp4"
    seen = []

    def failing(image):
        seen.append(1)
        if len(seen) == 4:
            raise RuntimeError("model exploded")
        return image

    with pytest.raises(RuntimeError):
        render_file(src, dst, failing)
    assert list(tmp_path.iterdir()) == [src]


@pytest.mark.slow
def test_ctrl_c_mid_video_leaves_a_playable_file(tmp_path, tiny_style):
    src = make_video(tmp_path / "in.mp4", frames=900, width=320, height=240, fps=30)
    dst = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "streamnst", "stylize", str(src), str(dst),
                             "--style", str(tiny_style), "--dtype", "fp32"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # printed once the model is loaded, just before rendering
    assert "style tiny" in first, first
    time.sleep(1.5)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    info = probe(dst)  # decodes every frame: a broken file raises here
    assert 0 < info["frames"] < 900
    assert info["audio_codec"] == "aac"
    assert abs(info["audio_seconds"] - info["frames"] / 30) < 0.2
