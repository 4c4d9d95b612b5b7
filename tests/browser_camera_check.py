"""Headless Chromium with a fake camera clicks "use my camera" on the viewer page of a
`--source webrtc` server and gets its camera back painted; a second browser watches.

Run by test_browser.py inside a loopback-only network namespace. Writes a JSON report.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from browser_check import CHROME_FLAGS, PIXEL_JS, wait  # noqa: E402

CAMERA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
COLOUR = (30, 160, 220)


def write_y4m(path: Path, frames: int = 60, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A solid-colour clip for Chromium's fake camera; returns the RGB it decodes to."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = COLOUR
    yuv = cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv.tobytes())
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)


def chromium(extra: list[str]):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROME_FLAGS + extra + [f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(20)
    return driver


def main(report_path: str, screenshot: str | None) -> None:
    home = Path(tempfile.mkdtemp())
    os.environ["STREAMNST_HOME"] = str(home)
    from conftest import tinted_unet

    from streamnst.engine.stylizer import Stylizer, StylizerSettings
    from streamnst.live.pipeline import Pipeline
    from streamnst.live.webrtc import WebRTCServer, WebRTCSink
    from streamnst.live.webrtc_source import WebRTCSource
    from streamnst.nets.checkpoint_io import save_style

    style = save_style(home / "checkpoints" / "alpha.pth", tinted_unet((1.5, -1.0, 0.0)),
                       "unet", style={"name": "alpha"})

    def make(name="alpha"):
        return Stylizer(style, StylizerSettings(device="cpu", dtype="fp32"))

    seen = write_y4m(home / "camera.y4m")
    painted = make().stylize(seen)
    report = {"expected": painted[60:180, 80:240].reshape(-1, 3).mean(0).tolist(),
              "sent": seen[60:180, 80:240].reshape(-1, 3).mean(0).tolist()}
    server = WebRTCServer("127.0.0.1", 0)
    sink = WebRTCSink(server=server)
    pipe = Pipeline(WebRTCSource(server), make(), [sink], stylizer_factory=make)
    sink.server.pipeline = pipe  # the control handle a session binds
    threading.Thread(target=pipe.start, daemon=True).start()
    wait(lambda: server.port and server.loop, 15)
    url = f"http://127.0.0.1:{server.port}/"
    sender = chromium(CAMERA_FLAGS + [f"--use-file-for-fake-video-capture={home}/camera.y4m"])
    watcher = None
    try:
        sender.get(url)
        report["button_shown"] = bool(wait(lambda: sender.execute_script(
            "return !document.getElementById('camera').hidden"), 20))
        report["camera_before_click"] = server.sender is not None  # nothing before the click
        sender.find_element("id", "camera").click()
        report["sending"] = bool(wait(lambda: server.sender is not None, 20))
        report["connected"] = bool(wait(lambda: sender.execute_script(
            "return window.streamnst.connected && window.streamnst.sending"), 30))
        wait(lambda: sender.execute_script(
            "return document.getElementById('video').videoWidth"), 20)
        first = sender.execute_script("return window.streamnst.frames")
        report["frames"] = wait(lambda: (n := sender.execute_script(
            "return window.streamnst.frames") - first) >= 30 and n, 30) or 0
        report["pixel"] = wait(lambda: sender.execute_script(PIXEL_JS), 10)
        if screenshot:
            sender.save_screenshot(screenshot)
        watcher = chromium([])
        watcher.get(url)
        wait(lambda: watcher.execute_script("return window.streamnst.connected"), 30)
        start = watcher.execute_script("return window.streamnst.frames")
        report["watcher_frames"] = wait(lambda: (n := watcher.execute_script(
            "return window.streamnst.frames") - start) >= 10 and n, 30) or 0
        report["watcher_pixel"] = watcher.execute_script(PIXEL_JS)
        report["page_error"] = sender.execute_script("return window.streamnst.error")
    finally:
        for driver in (sender, watcher):
            if driver is not None:
                driver.quit()
        pipe.stop()
        time.sleep(0.2)
    Path(report_path).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
