"""Run the live filter with WebRTC output and watch it in headless Chromium.

Run by test_browser.py, normally inside a loopback-only network namespace
(`unshare -n`), so every packet stays on 127.0.0.1. Writes a JSON report.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required", "--window-size=900,600",
]

PIXEL_JS = """
const v = document.getElementById('video');
if (!v.videoWidth) return null;
const c = document.createElement('canvas');
c.width = v.videoWidth; c.height = v.videoHeight;
const g = c.getContext('2d');
g.drawImage(v, 0, 0);
const d = g.getImageData(Math.floor(c.width / 4), Math.floor(c.height / 4),
                         Math.floor(c.width / 2), Math.floor(c.height / 2)).data;
let r = 0, gr = 0, b = 0, n = d.length / 4;
for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
return [r / n, gr / n, b / n];
"""

STATS_JS = """
const done = arguments[arguments.length - 1];
window.streamnstPeer.getStats().then((s) => {
  let decoded = 0;
  s.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video')
    decoded = r.framesDecoded; });
  done(decoded);
});
"""


EVIL_PAGE = """<!doctype html><title>another site</title><script>
const target = "http://127.0.0.1:%(port)d";
window.evil = {};
const json = {"Content-Type": "application/json"};
async function attempt(name, url, init) {
  try {
    const r = await fetch(url, init);
    window.evil[name] = init.mode === "no-cors" ? "sent" : "answered " + r.status;
  } catch (e) { window.evil[name] = "blocked"; }
}
(async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  await pc.setLocalDescription(await pc.createOffer());
  const offer = JSON.stringify({sdp: pc.localDescription.sdp, type: "offer"});
  const change = JSON.stringify({style: "alpha", strength: 0.2, blend: "off"});
  // a "simple" request: no preflight, the browser sends it and hides the answer
  await attempt("simple_control", target + "/api/control", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: change});
  await attempt("simple_offer", target + "/offer", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: offer});
  // JSON needs a CORS preflight, which we never grant
  await attempt("json_control", target + "/api/control", {method: "POST", headers: json,
    body: change});
  await attempt("json_offer", target + "/offer", {method: "POST", headers: json, body: offer});
  await attempt("state", target + "/api/state", {});
  window.evil.done = true;
})();
</script>"""


def serve_other_site(port: int) -> tuple[str, object]:
    """The attacker's page on a second loopback port (another origin)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page = (EVIL_PAGE % {"port": port}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/", httpd


def cross_site_attack(driver, pipe, server) -> dict:
    """Open the other site's page and report what its requests achieved."""
    url, httpd = serve_other_site(server.port)
    before = {"style": pipe.stylizer.name, "blend": pipe.blend_settings,
              "answered": server.offers_answered}
    try:
        driver.get(url)
        result = wait(lambda: driver.execute_script(
            "return window.evil && window.evil.done ? window.evil : null"), 20) or {}
    finally:
        httpd.shutdown()
    time.sleep(1.0)
    return {"page": result, "style_kept": pipe.stylizer.name == before["style"]
            and not pipe.switching, "blend_kept": pipe.blend_settings == before["blend"],
            "offers_answered": server.offers_answered - before["answered"]}


def mix_from_the_page(driver, pipe) -> dict:
    """The mix row: hidden for a style file, shown for a bank style with its partners, and
    its slider mixing the other style into what the pipeline paints."""
    from selenium.webdriver.support.ui import Select

    shown = "return !document.getElementById('mix-row').hidden"
    out = {"hidden_for_a_file": not driver.execute_script(shown)}
    Select(driver.find_element("id", "style")).select_by_value("g1")
    out["bank_style_running"] = bool(wait(lambda: pipe.stylizer.name == "g1", 20))
    out["shown_for_a_bank_style"] = bool(wait(lambda: driver.execute_script(shown), 10))
    out["partners"] = driver.execute_script(
        "return [...document.getElementById('mix-style').options].map((o) => o.value)")
    driver.execute_script("const m = document.getElementById('mix'); m.value = 0.5;"
                          "m.dispatchEvent(new Event('change'));")
    out["mixed"] = bool(wait(lambda: pipe.stylizer.checkpoint.style.get("mix") == ["g2", 0.5],
                             10))
    out["page_shows"] = wait(lambda: driver.execute_script(
        "return document.getElementById('mix-value').textContent") == "50%" and "50%", 10)
    return out


def learn_from_the_page(driver, pipe, home: Path) -> dict:
    """Pick a painting with the page's file input: it is uploaded and learning starts."""
    yy, xx = np.mgrid[0:120, 0:120]
    stripes = (np.sin((xx + yy) / 4.0) > 0).astype(np.uint8) * 200
    painting = home / "my painting.png"
    cv2.imwrite(str(painting), np.dstack([stripes, 255 - stripes, stripes // 2]))
    driver.find_element("id", "painting").send_keys(str(painting))
    started = wait(lambda: pipe.learning.current is not None, 30)
    shown = wait(lambda: (t := driver.execute_script(
        "return document.getElementById('learn-info').textContent")).startswith("learning")
        and t, 30)
    name = pipe.learning.current.name if started else None
    pipe.learning.stop()  # cancelled: the test needs no four-minute run
    return {"started": bool(started), "shown": shown, "name": name}


def wait(pred, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


def main(report_path: str, screenshot: str | None) -> None:
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select

    home = Path(tempfile.mkdtemp())
    os.environ["STREAMNST_HOME"] = str(home)
    from conftest import tinted_unet

    from streamnst.engine.stylizer import Stylizer, StylizerSettings
    from streamnst.live.pipeline import Pipeline
    from streamnst.live.sources import ImageSource
    from streamnst.live.webrtc import WebRTCSink
    from streamnst.nets.checkpoint_io import save_style

    paths = {name: save_style(home / "checkpoints" / f"{name}.pth", tinted_unet(tint), "unet",
                              style={"name": name})
             for name, tint in (("alpha", (1.5, -1.0, 0.0)), ("beta", (-1.5, 1.0, 1.0)))}
    from conftest import random_bank

    from streamnst.nets.checkpoint_io import save_bank

    save_bank(home / "checkpoints" / "duo.bank.pth", random_bank(2),
              [{"name": "g1"}, {"name": "g2"}])
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = (30, 160, 220)
    cv2.imwrite(str(home / "flat.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def make(name):
        return Stylizer(paths.get(name, name), StylizerSettings(device="cpu", dtype="fp32"))

    expected = {n: make(n).stylize(img)[30:90, 40:120].reshape(-1, 3).mean(0).tolist()
                for n in paths}
    sink = WebRTCSink(port=0)
    pipe = Pipeline(ImageSource(home / "flat.png", fps=20), make("alpha"), [sink],
                    stylizer_factory=make)
    sink.server.pipeline = pipe  # the control handle a session binds
    pipe.start()
    report = {"expected": expected}
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROME_FLAGS + [f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_script_timeout(20)
        driver.get(sink.server.url)
        report["connected"] = bool(wait(lambda: driver.execute_script(
            "return window.streamnst.connected"), 30))
        report["video_width"] = wait(lambda: driver.execute_script(
            "return document.getElementById('video').videoWidth"), 20)
        first = driver.execute_script("return window.streamnst.frames")
        time.sleep(2.0)
        report["frames_counted"] = driver.execute_script("return window.streamnst.frames") - first
        report["frames_decoded"] = driver.execute_async_script(STATS_JS)
        report["pixel_before"] = wait(lambda: driver.execute_script(PIXEL_JS), 10)
        if screenshot:
            driver.save_screenshot(screenshot)
        wait(lambda: driver.execute_script(
            "return document.getElementById('style').options.length") == 4, 10)
        Select(driver.find_element("id", "style")).select_by_value("beta")
        report["switched"] = bool(wait(lambda: pipe.stylizer.name == "beta", 20))
        time.sleep(1.5)
        report["pixel_after"] = driver.execute_script(PIXEL_JS)
        report["page_style"] = wait(lambda: (driver.execute_script(
            "return window.streamnst.state && window.streamnst.state.style") == "beta")
            and "beta", 10)
        report["page_error"] = driver.execute_script("return window.streamnst.error")
        report["info"] = wait(lambda: "CPU" in (t := driver.execute_script(
            "return document.getElementById('info').textContent")) and t, 10)
        driver.find_element("id", "auto-scale").click()  # off (the pipeline's default) -> on
        report["auto_scale_on"] = bool(wait(lambda: pipe.autoscaler is not None, 10))
        driver.find_element("id", "auto-scale").click()  # -> off: the slider's scale again
        report["auto_scale_off"] = bool(wait(lambda: pipe.autoscaler is None, 10))
        driver.find_element("id", "keep-colors").click()
        report["keep_colors_on"] = bool(wait(lambda: pipe.stylizer.settings.keep_colors, 10))
        driver.execute_script("const k = document.getElementById('keep-face'); k.value = 0.6;"
                              "k.dispatchEvent(new Event('change'));")
        report["keep_face"] = wait(lambda: pipe.stylizer.keep_face, 10)
        report["keep_face_shown"] = wait(lambda: driver.execute_script(
            "return document.getElementById('keep-face-value').textContent") == "60%"
            and "60%", 10)
        report["mix"] = mix_from_the_page(driver, pipe)
        driver.get(sink.server.url + "?bare=1")
        report["bare_controls_hidden"] = not driver.find_element("id", "controls").is_displayed()
        report["cross_site"] = cross_site_attack(driver, pipe, sink.server)
        driver.get(sink.server.url)  # last: learning changes the style
        report["learning"] = learn_from_the_page(driver, pipe, home)
    finally:
        driver.quit()
        pipe.stop()
    Path(report_path).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
