"""What a hostile client or an unlucky user sent that went wrong (issue 49, items 4-18):
uploads, control requests, style and bank names, URLs with secrets, odd sources and
paintings, and the log noise they made. Each test sends what was sent then."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import socket
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli, wait_until
from conftest import random_bank, tinted_unet
from http_helpers import post_control
from rich.console import Console

from streamnst.core.errors import CheckpointError, InputError, OutputError
from streamnst.engine.canvas import canvas_grain
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.live import http_server
from streamnst.live.broadcast import RtmpSink, mask_key
from streamnst.live.paintings import display_name, paintings_dir
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import NullSink, open_sink
from streamnst.live.sources import ImageSource
from streamnst.live.stats import SinkProblem, rss_mb
from streamnst.live.style_switch import StyleSwitcher
from streamnst.live.webrtc import WebRTCSink
from streamnst.live.whip import WhipSink, mask_url
from streamnst.media.imageio import decode_image, resize_painting
from streamnst.nets.checkpoint_io import (
    available_styles,
    bundled_dir,
    read_bank,
    save_bank,
    save_style,
    user_dir,
)

pytestmark = pytest.mark.network
FAST = StylizerSettings(device="cpu", dtype="fp32")


@pytest.fixture
def served(tmp_path):
    still = tmp_path / "scene.png"
    cv2.imwrite(str(still), np.full((120, 160, 3), 90, np.uint8))
    web = WebRTCSink(port=0)

    def make(name):
        return Stylizer(name, FAST)

    pipe = Pipeline(ImageSource(still, fps=15), make("starry_night"), [NullSink(), web],
                    stylizer_factory=make)
    web.server.pipeline = pipe
    pipe.start()
    yield pipe, web.server
    pipe.stop()


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/api/paintings", body=body,
                     headers={"Host": f"127.0.0.1:{port}", **headers})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def _upload(port: int, body: bytes, name: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/octet-stream"}
    if name is not None:
        headers["X-Painting-Name"] = name
    return _post(port, body, headers)


def _png(seed: int, size: int = 96) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)
    return cv2.imencode(".png", rgb)[1].tobytes()


def _radiance_bomb(width: int = 16000, height: int = 10300) -> bytes:
    """A run-length Radiance file whose header says 165 megapixels, in about 10 MB."""
    run = bytes([255, 100]) * 125 + bytes([253, 100])
    scanline = bytes([2, 2, width >> 8, width & 255]) + run * 3 + \
        bytes([255, 128]) * 125 + bytes([253, 128])
    head = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (height, width)
    return head + scanline * height


# ----- item 4: uploads that cannot be measured, and one decode at a time ---------------------
def test_an_upload_whose_size_cannot_be_read_first_is_refused_before_decoding(served):
    _, server = served
    bomb = _radiance_bomb()
    assert len(bomb) < 10.5e6
    before = rss_mb()
    code, reply = _upload(server.port, bomb)
    assert code == 400 and "not a readable image" in reply["error"]
    assert rss_mb() - before < 300  # before: +3.8 GB (the decoded 16000x10300 floats)
    assert not paintings_dir().exists() or not any(paintings_dir().iterdir())


def test_a_second_upload_while_one_is_decoded_is_refused(served):
    _, server = served

    async def decoding() -> None:  # as an upload holds it while it decodes
        await server._receiving.acquire()

    asyncio.run_coroutine_threadsafe(decoding(), server.loop).result(5)
    try:
        code, reply = _upload(server.port, _png(2))
    finally:
        server.loop.call_soon_threadsafe(server._receiving.release)
    assert code == 409 and "being received" in reply["error"]  # before: decoded at once
    assert not paintings_dir().exists() or not any(paintings_dir().iterdir())
    assert _upload(server.port, _png(2))[0] == 200  # and once it is done, it goes in


# ----- items 10, 12, 13: the header, busy, storage errors, names -------------------------------
def test_an_upload_without_a_content_type_is_refused(served):
    _, server = served
    code, reply = _post(server.port, _png(3), {})  # aiohttp reads none as octet-stream
    assert code == 415 and "octet-stream" in reply["error"]


def test_an_upload_refused_as_busy_stores_nothing(served):
    pipe, server = served
    assert _upload(server.port, _png(4))[0] == 200  # learning now
    code, reply = _upload(server.port, _png(5))
    assert code == 409 and "one painting at a time" in reply["error"]
    assert len(list(paintings_dir().iterdir())) == 1  # before: the refused one was stored
    pipe.learning.stop()


def test_an_upload_that_cannot_be_stored_says_why_in_json(served):
    _, server = served
    paintings_dir().parent.mkdir(parents=True, exist_ok=True)
    paintings_dir().write_text("a file where the folder goes")
    code, reply = _upload(server.port, _png(6))
    assert code == 507 and "cannot store the painting" in reply["error"]  # before: a 500 page


def test_a_file_name_in_any_script_reaches_the_style_name():
    assert display_name(quote("日本の絵.jpg")) == "日本の絵"  # as the page now sends it
    assert display_name(quote("🎨.png")) == "painting"
    assert display_name(quote("../../etc/passwd")) == "passwd"
    assert display_name("plain name.jpg") == "plain name"


def test_the_page_sends_the_name_percent_encoded():
    page = (Path(http_server.__file__).parent / "web" / "viewer.js").read_text()
    assert '"X-Painting-Name": encodeURIComponent(file.name)' in page


# ----- item 14: a refused control request changes nothing ---------------------------------
def test_a_refused_control_request_applies_none_of_its_fields(served):
    pipe, server = served
    blend = pipe.blend_settings
    code, reply = post_control(server.port, {"blend": "off", "strength": 0.2, "style": "nope"})
    assert code == 400 and "unknown style" in reply["error"]
    assert pipe.blend_settings == blend  # before: blend and strength had changed
    code, _ = post_control(server.port, {"strength": 0.3, "keep_face": 7})
    assert code == 400 and pipe.blend_settings == blend


# ----- item 15: files win over bank styles of the same name -------------------------------
def test_a_style_file_wins_over_the_bank_style_of_its_name(served):
    pipe, server = served
    index = available_styles()
    assert index["san_giorgio"].name.endswith(".bank.pth")
    assert index["starry_night"].suffix == ".pth" and "bank" not in index["starry_night"].name
    assert post_control(server.port, {"style": "san_giorgio"})[0] == 200
    assert wait_until(lambda: pipe.stylizer.name == "san_giorgio", 30)
    assert post_control(server.port, {"style": "starry_night"})[0] == 200
    assert wait_until(lambda: pipe.stylizer.name == "starry_night" and not pipe.switching, 30)
    assert pipe.stylizer.checkpoint.bank is None  # the file, not the bank's starry_night
    assert pipe.stylizer.checkpoint.path == index["starry_night"]


# ----- items 8, 11, 17: bank names and banks checked before use ---------------------------
def _bank(path: Path, names: list[str]) -> Path:
    return save_bank(path, random_bank(len(names)), [{"name": n} for n in names])


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "a\\b", "bank:x", "",
                                  "x" * 10_000])
def test_a_bank_style_name_that_is_not_a_name_is_refused(tmp_path, name):
    bank = _bank(tmp_path / "odd.bank.pth", ["fine", name])
    with pytest.raises(CheckpointError, match="is not a name"):
        read_bank(bank)


def test_a_bank_is_checked_before_a_network_is_built(tmp_path):
    with pytest.raises(CheckpointError, match="two styles are named"):
        read_bank(_bank(tmp_path / "twice.bank.pth", ["a", "a"]))
    bank = random_bank(2)
    with torch.no_grad():
        next(iter(bank.norms.values())).weight[0, 0] = float("nan")
    nan = save_bank(tmp_path / "nan.bank.pth", bank, [{"name": "a"}, {"name": "b"}])
    with pytest.raises(CheckpointError, match="NaN"):  # before: it painted black
        read_bank(nan)
    data = torch.load(_bank(tmp_path / "big.bank.pth", ["a"]), weights_only=True)
    data["arch_args"].update(width=256, res_convs=64)  # the weights are for width 4
    torch.save(data, tmp_path / "big.bank.pth")
    before = rss_mb()
    with pytest.raises(CheckpointError, match="do not fit"):
        Stylizer(f"{tmp_path / 'big.bank.pth'}:a", FAST)
    assert rss_mb() - before < 500  # before: 2.9 GB allocated, then the failure


def test_a_user_bank_does_not_shadow_the_bundled_names():
    bundled = {n: p for n, p in available_styles().items() if p.name.endswith(".bank.pth")}
    user_dir().mkdir(parents=True, exist_ok=True)
    _bank(user_dir() / "mine.bank.pth", [*bundled, "only_mine"])
    index = available_styles()
    assert all(index[n] == p for n, p in bundled.items())
    assert index["only_mine"] == user_dir() / "mine.bank.pth"
    assert index["starry_night"].parent == bundled_dir()  # a file still wins


def test_every_failure_of_a_style_load_is_reported_and_the_switch_ends(tiny_style):
    running = Stylizer(tiny_style, FAST)

    def broken(name: str) -> Stylizer:
        raise OSError(36, "File name too long")

    switcher = StyleSwitcher(lambda: running, broken)
    switcher.switch("x" * 10_000).join(10)
    assert switcher.switching is None  # before: stuck
    assert "File name too long" in switcher.error and len(switcher.error) < 400


# ----- item 7: names are never read as rich markup -----------------------------------------
def test_style_names_with_markup_are_printed_as_they_are(tmp_path):
    user_dir().mkdir(parents=True, exist_ok=True)
    save_style(user_dir() / "[red]y.pth", tinted_unet((0.5, 0.5, 0.5)), "unet",
               style={"name": "[red]y"})
    r = run_cli("styles", env={"STREAMNST_HOME": str(user_dir().parent)})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "[red]y" in r.stdout


def test_the_live_panel_shows_a_style_named_like_markup(tmp_path):
    from streamnst.cli.live_keys import status_table

    weird = save_style(tmp_path / "weird.pth", tinted_unet((0.5, 0.5, 0.5)), "unet",
                       style={"name": "[/red]x"})
    pipe = Pipeline(ImageSource(_still(tmp_path), fps=15), Stylizer(weird, FAST), [NullSink()])
    assert pipe.stylizer.name == "[/red]x"
    pipe.styles.error = "[/bold] a problem"
    pipe.sink_problems.append(SinkProblem("vcam", "virtual camera unavailable " * 20))
    console = Console(file=io.StringIO(), width=120)
    console.print(status_table(pipe))  # before: MarkupError
    shown = console.file.getvalue()
    assert "[/red]x" in shown and "[/bold] a problem" in shown
    assert shown.count("virtual camera unavailable") <= 5  # one line, not the whole hint
    assert len([line for line in shown.splitlines() if "virtual camera" in line]) == 1


def _still(tmp_path: Path) -> Path:
    cv2.imwrite(str(tmp_path / "still.png"), np.full((48, 64, 3), 80, np.uint8))
    return tmp_path / "still.png"


# ----- item 9: URLs with secrets --------------------------------------------------------
def test_passwords_keys_and_unknown_specs_are_never_shown():
    assert mask_key("rtmp://user:PASS@127.0.0.1:1/app/KEY") == "rtmp://****@127.0.0.1:1/app/****"
    assert mask_key("rtmp://h/app/KEY/") == "rtmp://h/app/****/"
    assert mask_key("RTMP://h/app/KEY") == "rtmp://h/app/****"
    assert mask_url("whip+http://user:PASS@h:8/a/KEY") == "whip+http://****@h:8/****"
    for spec in ("RTMP://h/app/KEY", "Whip+Http://h/w/KEY"):
        sink = open_sink(spec)  # the scheme in any case
        assert "KEY" not in sink.name
    assert isinstance(RtmpSink("rtmp://user:PASS@h/app/KEY"), RtmpSink)
    with pytest.raises(OutputError) as unknown:
        open_sink("whip+ftp://h/x/KEY")
    assert "KEY" not in str(unknown.value) and "whip+ftp" in str(unknown.value)
    with pytest.raises(OutputError) as bad:  # before: ValueError "Invalid IPv6 URL"
        open_sink("rtmp://[::1/app/K")
    assert "rtmp://HOST" in str(bad.value)
    sink = WhipSink("whip+http://user:PASS@127.0.0.1:9/w/KEY", "TOKEN")
    reason = sink._reason(OSError("POST http://user:PASS@127.0.0.1:9/w/KEY: user:PASS TOKEN"))
    assert not any(s in reason + sink.name for s in ("PASS", "KEY", "TOKEN"))


def test_the_cli_masks_credentials_in_warnings_and_json(tmp_path):
    r = run_cli("live", "--source", "pattern:64x48@10", "--output", "null", "--output",
                "RTMP://user:PASS@127.0.0.1:1/app/KEY/", "--output",
                "whip+http://user:PASS@127.0.0.1:1/w/KEY", "--duration", "1", "--json",
                timeout=120)
    assert r.returncode == 0, r.stderr
    assert "PASS" not in r.stdout + r.stderr and "KEY" not in r.stdout + r.stderr
    assert len(json.loads(r.stdout)["sink_problems"]) == 2


# ----- items 5, 18: sources ------------------------------------------------------------------
@pytest.mark.parametrize("spec,fragment", [
    ("pattern:20000x20000", "width and height must be 2 to 7680"),  # before: 6 GiB traceback
    ("pattern:640x360@0", "frame rate 1 to 240"),  # before: ZeroDivisionError
])
def test_impossible_patterns_are_one_line_errors(spec, fragment):
    r = run_cli("live", "--source", spec, "--output", "null", "--duration", "1", timeout=120)
    assert_clean_error(r, fragment)


def test_a_folder_as_the_source_says_it_is_a_folder(tmp_path):
    r = run_cli("live", "--source", tmp_path, "--output", "null", "--duration", "1",
                timeout=120)
    assert_clean_error(r, "is a folder")


def test_a_one_pixel_frame_warns_of_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before: torch's std() UserWarning
        grain = canvas_grain(1, 1, 1, torch.Generator().manual_seed(0))
    assert grain.shape == (1, 1, 1, 1) and torch.isfinite(grain).all()


def test_a_bad_upload_leaves_the_codec_libraries_silent(capfd):
    png = bytearray(_png(7))
    png[100:110] = b"x" * 10  # a CRC error in the image data
    with pytest.raises(InputError):
        decode_image(bytes(png), "the painting", measured_only=True)
    assert capfd.readouterr().err == ""  # before: "libpng error: IDAT: CRC error"


def test_an_idle_connection_is_closed_without_a_traceback(served, caplog, monkeypatch):
    monkeypatch.setattr(http_server, "HEADER_TIMEOUT_S", 0.3)
    _, server = served
    with caplog.at_level(logging.DEBUG):
        idle = socket.create_connection(("127.0.0.1", server.port))
        try:
            idle.settimeout(5)
            assert idle.recv(10) == b""  # closed by the server
        finally:
            idle.close()
        time.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "AttributeError" not in caplog.text


# ----- items 6, 16: paintings and --out of quick training -------------------------------------
def test_a_thin_painting_is_tiled_and_a_tiny_one_refused():
    banner = np.random.default_rng(0).integers(0, 256, (100, 2000, 3), np.uint8)
    fitted = resize_painting(banner, 384)
    assert fitted.shape[1] == 384 and fitted.shape[0] >= 64  # 384x19 failed in VGG
    strip = np.random.default_rng(0).integers(0, 256, (16, 100_000, 3), np.uint8)
    assert min(resize_painting(strip, 384).shape[:2]) >= 64
    for side in (1, 4):
        with pytest.raises(InputError, match="too small"):
            resize_painting(np.zeros((side, side, 3), np.uint8), 384)


def test_quick_training_on_a_banner_finds_its_nearest_style(tmp_path):
    from streamnst.training.quick import plan

    banner = tmp_path / "banner.png"
    cv2.imwrite(str(banner), np.random.default_rng(0).integers(0, 256, (100, 2000, 3),
                                                               np.uint8))
    quick = plan(banner, tmp_path / "q.pth")  # before: "Output size is too small"
    assert quick.nearest in quick.distances


def test_quick_training_checks_out_and_minutes_before_it_starts(tmp_path):
    painting = tmp_path / "p.png"
    cv2.imwrite(str(painting), np.full((64, 64, 3), 120, np.uint8))
    (tmp_path / "file").write_text("not a folder")
    t0 = time.monotonic()
    r = run_cli("train", painting, "--quick", "--out", tmp_path / "file" / "q.pth",
                "--minutes", "0.05", timeout=300)
    assert_clean_error(r, "cannot write", str(tmp_path / "file" / "q.pth"))
    assert time.monotonic() - t0 < 60 and ".partial" not in r.stderr
    r = run_cli("train", painting, "--quick", "--out", tmp_path / "q.pth", "--minutes", "nan")
    assert_clean_error(r, "--minutes must be a number")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((4, 4, 3), np.uint8))
    r = run_cli("train", tiny, "--quick", "--out", tmp_path / "q.pth", timeout=300)
    assert_clean_error(r, "too small to learn a style from")
