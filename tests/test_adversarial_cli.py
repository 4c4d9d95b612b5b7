"""The command-line holes of the adversarial pass, each as a user would meet it: image
bombs, odd checkpoints, a full disk, directories for files, tiny videos, an early Ctrl+C,
a failing `live --json`, and `--source webrtc` off loopback."""

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, free_port, run_cli
from conftest import tinted_unet
from media import make_video, probe

from streamnst.nets.checkpoint_io import save_style


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for width x height and no pixel data at all (74 bytes or so)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"")) \
        + chunk(b"IEND", b"")


@pytest.mark.slow
def test_an_image_bomb_is_one_line(tmp_path, tiny_style):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(60000, 60000))
    r = run_cli("stylize", bomb, tmp_path / "out.png", "--style", tiny_style)
    assert_clean_error(r, "megapixel limit")


@pytest.mark.slow
def test_a_real_20000_px_png_is_refused_before_decoding(tmp_path, tiny_style):
    big = tmp_path / "big.png"
    ok, buf = cv2.imencode(".png", np.zeros((20000, 20000, 3), np.uint8))
    assert ok
    buf.tofile(str(big))
    r = run_cli("stylize", big, tmp_path / "out.png", "--style", tiny_style, timeout=60)
    assert_clean_error(r, "megapixel limit")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("field, value, says", [
    ("style", "a string", "'style' must be a mapping"),
    ("training", ["a", "list"], "'training' must be a mapping"),
    ("arch_args", {"width": 60000}, "width=60000"),
    ("arch_args", {"width": True}, "width=True"),
    ("arch_args", {"res_convs": 1000}, "res_convs=1000"),
])
@pytest.mark.slow
def test_odd_checkpoint_fields_are_one_line(tmp_path, field, value, says):
    path = save_style(tmp_path / "odd.pth", tinted_unet((1, 0, 0)), "unet",
                      style={"name": "odd"})
    data = torch.load(path, weights_only=True)
    data[field] = value
    torch.save(data, path)
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.full((32, 32, 3), 90, np.uint8))
    r = run_cli("stylize", img, tmp_path / "out.png", "--style", path)
    assert_clean_error(r, says)


@pytest.mark.parametrize("which", ["input", "output"])
def test_a_directory_for_a_file_is_one_line(tmp_path, tiny_style, which):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.full((32, 32, 3), 90, np.uint8))
    folder = tmp_path / "folder"
    folder.mkdir()
    args = (folder, tmp_path / "o.png") if which == "input" else (img, folder)
    r = run_cli("stylize", *args, "--style", tiny_style)
    assert_clean_error(r, "is a directory")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_a_2x2_video_stylises_with_the_flow_blend(tmp_path, tiny_style):
    src = make_video(tmp_path / "tiny.mp4", frames=6, width=2, height=2, fps=10, audio=False)
    r = run_cli("stylize", src, tmp_path / "out.mp4", "--style", tiny_style, "--blend", "flow")
    assert r.returncode == 0, r.stderr
    assert probe(tmp_path / "out.mp4")["frames"] == 6


def test_live_json_reports_the_error_it_ended_with(tmp_path, tiny_style):
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    r = run_cli("live", "--source", "pattern:96x64@30", "--style", tiny_style, "-o", "window",
                "--duration", "5", "--json", env=env, timeout=60)
    assert_clean_error(r, "no output could be opened")
    summary = json.loads(r.stdout)
    assert "no output could be opened" in summary["error"]


def test_ctrl_c_while_importing_is_one_word(tmp_path):
    for wait in (0.4, 0.8, 1.6):  # inside the imports (torch takes seconds)
        proc = subprocess.Popen([sys.executable, "-m", "streamnst", "styles"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(wait)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        # a busy machine may not have started the interpreter yet: that signal ends it
        # before any code of ours runs (-2, nothing said), which is not this case
        if not (proc.returncode == -signal.SIGINT and not err):
            break
    assert "Traceback" not in err, err
    assert proc.returncode in (130, 0), (proc.returncode, err)
    assert "interrupted" in err or proc.returncode == 0


@pytest.mark.slow
def test_webrtc_source_off_loopback_prints_a_usable_token_url(tmp_path, tiny_style):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamnst", "live", "--source", "webrtc",
                             "--output", "null", "--host", "0.0.0.0", "--port", str(port),
                             "--style", str(tiny_style), "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, COLUMNS="200"))
    try:
        import http.client

        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()
            if "open http://" in line:
                url = line.split("open ", 1)[1].strip()
        assert url and "token=..." not in url and "?token=" in url, url
        token = url.split("?token=", 1)[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/api/state?token={token}", headers={"Host": f"127.0.0.1:{port}"})
        assert conn.getresponse().status == 200  # the printed token opens the page's API
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


@pytest.mark.slow
def test_train_onto_a_full_disk_is_one_line(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(full)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()!r})")
    try:
        photos = tmp_path / "photos"
        photos.mkdir()
        rng = np.random.default_rng(0)
        for i in range(4):
            cv2.imwrite(str(photos / f"p{i}.png"), rng.integers(0, 255, (48, 48, 3), np.uint8))
        style = tmp_path / "style.png"
        cv2.imwrite(str(style), rng.integers(0, 255, (40, 40, 3), np.uint8))
        # a wide network: its state (weights and Adam's moments) does not fit in 200 KB
        r = run_cli("train", style, "--data", photos, "--out", full / "s.pth", "--steps", "2",
                    "--size", "32", "--batch", "1", "--style-size", "40", "--width", "32",
                    "--res-convs", "2", "--checkpoint-every", "1", "--device", "cpu",
                    "--dtype", "fp32", "--style-layers", "relu1_1",
                    "--style-layer-weights", "1", timeout=300)
        assert_clean_error(r, "the disk is full", "--resume")
        assert r.stderr.count("\n") <= 2, r.stderr  # the progress bar's last line at most
        assert not [p for p in Path(full).rglob("*partial*")]  # no half-written file left
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
