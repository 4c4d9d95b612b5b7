"""A real browser: Debian's headless Chromium, driven by selenium, watches the stream."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]  # the browser scripts sit in tests/
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs Debian's chromium and chromium-driver (CI installs them)")]


def _run_check(tmp_path, script="browser_check.py"):
    report, shot = tmp_path / "report.json", tmp_path / "page.png"
    cmd = [sys.executable, str(HERE / script), str(report), str(shot)]
    # a loopback-only network namespace keeps every packet on 127.0.0.1
    isolated = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    full = isolated if probe.returncode == 0 and shutil.which("ip") else cmd
    r = subprocess.run(full, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(report.read_text()), shot


def _close(a, b, tol=25):
    return a is not None and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.mark.slow
def test_chromium_receives_decodes_and_switches_style(tmp_path):
    report, shot = _run_check(tmp_path)
    assert report["connected"], report
    assert report["video_width"] == 160
    assert report["frames_counted"] > 10  # requestVideoFrameCallback kept firing
    assert report["frames_decoded"] > 10
    exp = report["expected"]
    assert _close(report["pixel_before"], exp["alpha"]), report
    assert not _close(exp["alpha"], exp["beta"])
    assert report["switched"] and report["page_style"] == "beta"
    assert _close(report["pixel_after"], exp["beta"]), report
    assert report["page_error"] is None
    # the CPU the filter takes, beside its frame rate
    assert re.search(r"fps.* · CPU \d+ ms a frame \(\d+ cores\)", report["info"]), report
    assert report["auto_scale_on"] and report["auto_scale_off"]  # the viewer's checkbox
    assert report["bare_controls_hidden"]
    learning = report["learning"]  # a painting picked on the page is sent and learnt
    assert learning["started"] and learning["name"].startswith("my_painting_"), learning
    assert learning["shown"].startswith("learning my_painting_"), learning
    assert report["keep_colors_on"]  # the viewer's "Keep my colours" box
    assert report["keep_face"] == 0.6  # the "Keep my face" slider
    assert report["keep_face_shown"] == "60%", report
    mix = report["mix"]  # the viewer's mix slider, for the styles of one bank
    assert mix["hidden_for_a_file"] and mix["bank_style_running"], mix
    assert mix["shown_for_a_bank_style"] and mix["partners"] == ["g2"], mix
    assert mix["mixed"] and mix["page_shows"] == "50%", mix
    assert shot.stat().st_size > 5000
    # a page from another origin (a second loopback port) can neither steer the filter
    # nor get an answer to an offer
    attack = report["cross_site"]
    assert attack["page"].get("done"), attack
    assert attack["style_kept"] and attack["blend_kept"], attack
    assert attack["offers_answered"] == 0, attack
    for name in ("json_control", "json_offer", "state"):
        assert attack["page"][name] == "blocked", attack


@pytest.mark.slow
def test_chromium_sends_its_camera_and_gets_it_back_painted(tmp_path):
    """--source webrtc with a real browser: Chromium's fake camera plays a solid-colour
    clip; the page only asks for it after the click; a second browser watches."""
    report, shot = _run_check(tmp_path, "browser_camera_check.py")
    assert report["button_shown"] and not report["camera_before_click"], report
    assert report["sending"] and report["connected"], report
    assert report["frames"] >= 30, report  # painted frames decoded by the sending page
    assert _close(report["pixel"], report["expected"]), report  # painted: not the camera
    assert not _close(report["expected"], report["sent"])
    assert report["watcher_frames"] >= 10 and _close(report["watcher_pixel"], report["expected"])
    assert report["page_error"] is None
    assert shot.stat().st_size > 5000
