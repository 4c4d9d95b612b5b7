"""The figure-making scripts under tools/ run end to end on real clips: they made the
numbers in docs/, so a change that breaks one must fail here, not in the next session."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamnst.media.imageio import read_image

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def tool(*args) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(TOOLS / args[0]), *map(str, args[1:])],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.slow
def test_live_bench_compares_auto_and_fixed_scales(tiny_style):
    r = tool("live_bench.py", "demo", "--style", tiny_style, "--seconds", "2",
             "--scale", "auto", "--scale", "0.5", "--blend", "off", "--sink", "null")
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [(row["auto_scale"], row["blend"]) for row in rows] == [(True, "off"), (False, "off")]
    assert rows[1]["scale"] == 0.5 and all(row["frames_out"] > 5 for row in rows)
    # the per-stage budget: every stage of a file -> null run, and the side-by-side table
    stages = rows[1]["stages_ms"]
    for stage in ("capture", "resize", "to_tensor", "network", "from_tensor", "send:null"):
        assert stages[stage]["count"] > 5 and stages[stage]["median_ms"] >= 0, stage
    assert "flow" not in stages  # blend off: no optical flow was computed
    table = r.stdout.split("median ms per frame", 1)[1]
    assert "network" in table and "fps" in table
    assert rows[0]["size"] == [640, 480] and rows[0]["max_side"] == 640


@pytest.mark.slow
def test_temporal_report_measures_each_style_and_blend(tiny_style):
    r = tool("temporal_report.py", "demo", "--style", tiny_style, "--blend", "off",
             "--blend", "flow", "--frames", "6")
    rows = json.loads(r.stdout[r.stdout.index("["):])
    assert [row["blend"] for row in rows] == ["off", "flow"]
    for row in rows:
        assert row["style"] == "tiny" and row["ratio"] > 0 and row["sharpness_stylized"] > 0
    assert rows[1]["ewarp_stylized"] < rows[0]["ewarp_stylized"]  # the blend steadies


@pytest.mark.slow
def test_gallery_sheet_draws_painting_and_stylised_frames(tiny_style, tmp_path):
    out = tmp_path / "sheet.png"
    tool("gallery_sheet.py", "--style", tiny_style, "--clip", "demo:2",
         "--width", "64", "--height", "48", "--out", out)
    sheet = read_image(out).astype(float)
    gap = 4  # contact_sheet's default
    assert sheet.shape == (2 * (48 + gap) + gap, 3 * (64 + gap) + gap, 3)

    def cell(row: int, col: int) -> np.ndarray:  # below the caption box
        y, x = gap + row * (48 + gap), gap + col * (64 + gap)
        return sheet[y + 20:y + 48, x:x + 64]

    # originals in row 0, the tiny network's tinted pictures of them in row 1
    assert np.abs(cell(1, 2) - cell(0, 2)).mean() > 10
    tint = (cell(1, 2) - cell(0, 2)).mean(axis=(0, 1))
    assert tint[0] > tint[1]  # tinted_unet((1.5, -1.0, 0.5)): redder, less green


@pytest.mark.slow
def test_look_report_measures_styles_on_frames_and_draws_them(tiny_style, tmp_path):
    from conftest import random_bank

    from streamnst.nets.checkpoint_io import save_bank

    bank = save_bank(tmp_path / "two.bank.pth", random_bank(2), [{"name": "a"}, {"name": "b"}])
    out = tmp_path / "look.png"
    r = tool("look_report.py", "--style", tiny_style, "--bank", bank, "--frame", "demo:2",
             "--frame", "demo:2@100,0,200,150", "--sheet", out, "--cell", "64x48")
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| tiny (tiny.pth)", "| a (bank)",
                                                     "| b (bank)"]
    # the tinted network keeps the scene's layout; its numbers are the measured ones
    structure = float(re.search(r"\| ([0-9.]+)[ ✗]* \(min", rows[0]).group(1))
    assert 0.5 < structure <= 1.0
    sheet = read_image(out)
    assert sheet.shape == (4 * (48 + 4) + 4, 3 * (64 + 4) + 4, 3)  # painting + 2 frames


@pytest.mark.slow
def test_gallery_sheet_anchors_add_gatys_and_the_peer(tmp_path):
    from conftest import tinted_unet

    from streamnst.nets.checkpoint_io import save_style

    style = save_style(tmp_path / "t.pth", tinted_unet((1.0, 0.0, 0.0)), "unet",
                       style={"name": "t", "image": "vangogh_starry_night_1889.jpg"})
    out, cache = tmp_path / "sheet.png", tmp_path / "cache"
    tool("gallery_sheet.py", "--style", style, "--width", "64", "--height", "48",
         "--anchors", "--gatys-iterations", "5", "--anchors-dir", cache, "--out", out)
    sheet = read_image(out).astype(float)
    gap = 4
    assert sheet.shape == (2 * (48 + gap) + gap, 4 * (64 + gap) + gap, 3)  # painting, demo,
    # Gatys and the peer

    def cell(row: int, col: int) -> np.ndarray:
        y, x = gap + row * (48 + gap), gap + col * (64 + gap)
        return sheet[y + 20:y + 48, x:x + 64]

    # kept for the next run, under the painting's name, as tools/style_card.py keeps it
    (render,) = cache.glob("gatys_vangogh_starry_night_1889_384_5.png")
    gatys = read_image(render).astype(float)
    assert max(gatys.shape[:2]) == 384
    assert cell(1, 2).std() > 10 and cell(1, 3).std() > 10  # painted cells, not blanks
    # the optimisation moved the frame towards the painting; the peer repainted it
    assert np.abs(cell(1, 2) - cell(0, 1)).mean() > 3
    assert np.abs(cell(1, 3) - cell(0, 1)).mean() > 10


@pytest.mark.slow
def test_gpu_check_script_runs_every_part_and_says_when_there_is_no_gpu(tmp_path):
    """The GPU machine is rare, so the script's CPU dry run keeps every part of it working:
    the device tests, the bench table and a live run with its stage budget."""
    import torch

    script = TOOLS / "gpu_check.sh"
    if not torch.cuda.is_available():
        r = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and "no CUDA device" in r.stderr
    r = subprocess.run(["bash", str(script), "--cpu", str(tmp_path)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert re.search(r"\b3 passed", r.stdout)
    assert re.search(r"unet-w16 +eager-fp32 +320x180 +[0-9.]+", r.stdout)
    for size in ("1920x1080", "1280x720"):
        live = json.loads((tmp_path / f"live{size}.json").read_text())
        assert live["device"] == "cpu" and live["frames_out"] > 0, size
    assert re.search(r"network +median +[0-9.]+ ms", r.stdout)


@pytest.mark.slow
def test_soak_one_minute_keeps_memory_threads_and_files_flat():
    """The CI version of the soak (docs/reliability.md has the 30-minute figures)."""
    r = tool("soak.py", "--minutes", "1", "--switch-every", "3", "--viewers", "2")
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["pass"], report
    assert report["style_switches"] >= 10 and all(n > 30 for n in report["frames_per_viewer"])
    assert report["frame_failures"] == 0


@pytest.mark.slow
def test_still_flicker_sees_the_flow_blend_steady_the_still_parts():
    rows = {}
    for blend in ("off", "flow"):
        r = tool("still_flicker.py", "demo", "--style", "starry_night", "--frames", "12",
                 "--blend", blend)
        rows[blend] = json.loads(r.stdout.strip().splitlines()[-1])
    assert rows["off"]["still_share"] > 0.3 and rows["off"]["frames"] == 12
    assert 0 < rows["flow"]["still_change"] < 0.85 * rows["off"]["still_change"]
    assert 0 <= rows["flow"]["still_jumps"] <= rows["off"]["still_jumps"]


@pytest.mark.slow
def test_style_card_measures_a_style_against_its_gatys_anchor(tmp_path):
    args = ("style_card.py", "--style", "starry_night", "--clip", "demo", "--frames", "6",
            "--gatys-iterations", "3", "--anchors", tmp_path, "--json")
    row = json.loads(tool(*args).stdout.strip().splitlines()[-1])[0]
    anchor = tmp_path / "gatys_vangogh_starry_night_1889_384_3.png"
    assert anchor.is_file() and read_image(anchor).shape[1] == 384
    # the shipped style moves the frame towards the painting, in Gram and in palette
    assert 0 < row["gram"] < row["gram_input"] and row["colour"] < row["colour_input"]
    demo = row["demo"]
    assert demo["warp"] > 0 and demo["frozen"] > 0 and demo["texture"] > 0
    assert demo["still_share"] > 0.3 and demo["still_change"] >= 0
    # a second card reuses the cached anchor instead of optimising again
    stamp = anchor.stat().st_mtime_ns
    again = json.loads(tool(*args).stdout.strip().splitlines()[-1])[0]
    assert anchor.stat().st_mtime_ns == stamp and again["gram_gatys"] == row["gram_gatys"]


def test_every_gallery_line_is_a_valid_train_command(tmp_path):
    """styles/gallery.txt and the recipe in tools/train_gallery.sh are what retrains the
    gallery: a mistyped flag there would only show hours into a training run."""
    import shlex

    from streamnst.cli.styles_cmds import train

    script = (TOOLS / "train_gallery.sh").read_text()
    recipe = shlex.split(re.search(r"^recipe=\((.*?)\)", script, re.S | re.M).group(1))
    styles = TOOLS.parent / "styles"
    lines = [line.split() for line in (styles / "gallery.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) >= 8 and "--canvas" in recipe
    for name, painting, *flags in lines:
        assert (styles / painting).is_file(), painting
        flags = [f.replace("@RUNS", str(tmp_path)).replace("@REPO", str(TOOLS.parent))
                 for f in flags]
        args = [str(styles / painting), "--data", str(tmp_path), "--out", "x.pth", *recipe,
                *flags]
        ctx = train.make_context("train", args)
        assert ctx.params["canvas"] == 4 and ctx.params["steps"] >= 200, name


@pytest.mark.slow
def test_face_report_measures_the_detector_the_bar_steadiness_and_cost(tiny_style, tmp_path):
    out = tmp_path / "faces.png"
    r = tool("face_report.py", "--styles", tiny_style, "--rate-clip", "demo",
             "--close-up", "demo:100@170,20,320,240", "--frames", "12", "--sheet", out)
    rate = re.search(r"a face in (\d+)/(\d+) frames", r.stdout)
    assert rate and int(rate.group(1)) >= 0.8 * int(rate.group(2)) > 0  # the signers' faces
    row = next(line for line in r.stdout.splitlines() if line.startswith("| tiny"))
    cut, kept = (int(v) for v in re.findall(r"(\d+)%", row))
    assert cut >= 50 and kept >= 80, row  # the bar, as measured
    assert re.search(r"warping-error ratio [0-9.]+ without, [0-9.]+ with", r.stdout)
    assert re.search(r"the detector thread [0-9.]+ ms a frame \([1-9]\d* runs\)", r.stdout)
    assert read_image(out).shape[1] == 5 * (320 + 4) + 4  # input, default, 0.6, 1, colours


@pytest.mark.slow
def test_broadcast_bench_compares_rtmp_pullers_with_own_viewers_and_times_both():
    import nginx_rtmp
    import whip_endpoint

    if not (nginx_rtmp.available() and whip_endpoint.available()):
        pytest.skip("needs nginx-light, libnginx-mod-rtmp and tests/whip_server's npm "
                    "install (CI installs them)")
    r = tool("broadcast_bench.py", "--seconds", "4", "--pullers", "2", "--viewers", "1",
             "--whip")
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert rows[0]["rtmp"]["pullers_alive"] == 2 and rows[0]["rtmp"]["fps"] > 0
    assert rows[0]["whip_relayed"]["pullers_alive"] == 2 and rows[0]["whip_relayed"]["fps"] > 0
    assert rows[0]["webrtc"]["fps"] > 0
    latency = rows[1]["latency_ms_median"]
    assert 0 < latency["camera_to_rtmp_puller"] < 2000, rows
    # the relay's MPEG-TS hop buffers seconds: in 4 s it may show no flip to time
    assert "camera_to_puller_through_whip_relay" in latency, rows
    assert 0 < latency["camera_to_own_viewer"] < 2000, rows
