"""The chain as an explicit list of steps, on two roads: the host's (numpy and OpenCV, a
CPU's fastest) and the device's (tensors on the network's device: a GPU's road, run here
on the CPU with chain="torch"). Each step's device version must paint what its host
version paints, on real frames, and nothing may leave the device between the upload and
the download."""

from pathlib import Path

import numpy as np
import pytest
import torch

from streamnst.engine.faces import FaceKeeper
from streamnst.engine.steps import CHAIN
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender
from streamnst.media.demo import demo_clip
from streamnst.media.imageio import resize_to
from streamnst.media.video import VideoReader
from streamnst.offline.metrics import psnr, warping_errors

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
# every step on, at the amounts users pick
SETTINGS = dict(max_side=320, dtype="fp32", canvas=4.0, shading=0.5, palette=0.5,
                keep_face=0.6, keep_colors=False)


def clip(path, n: int, side: int = 480) -> list[np.ndarray]:
    frames = []
    with VideoReader(path) as reader:
        for i, image in enumerate(reader):
            if i >= n:
                break
            h, w = image.shape[:2]
            s = side / max(h, w)
            frames.append(resize_to(image, (round(w * s) // 2 * 2, round(h * s) // 2 * 2)))
    return frames


CLIPS = {"demo": lambda: clip(demo_clip(), 16),
         "talking head": lambda: clip(VIDEO / "asl_gestures" / "thanks.mkv", 16),
         "moving camera": lambda: clip(sorted((VIDEO / "davis").glob("*.mp4"))[0], 16)}


def paint(frames, road: str, steps=CHAIN, **extra) -> list[np.ndarray]:
    stylizer = Stylizer("starry_night", StylizerSettings(**{**SETTINGS, **extra}, chain=road))
    stylizer.chain = steps
    blend, faces = Blender(), FaceKeeper()
    return [stylizer.stylize(f, blend, faces) for f in frames]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLIPS))
def test_each_step_on_the_device_road_paints_what_the_host_road_paints(name):
    """The chain cut after each step (the network onward): both roads, the same frames,
    40 dB or better on average over the clip, and 38 on its worst frame (the recursive
    blend carries each frame's rounding on: the host road rounds to bytes at every step)."""
    if name != "demo" and not VIDEO.is_dir():
        pytest.skip("needs ../shared/data/video")
    frames = CLIPS[name]()
    first = [s.name for s in CHAIN].index("network")
    for k in range(first + 1, len(CHAIN) + 1):
        extra = {"keep_colors": True} if CHAIN[k - 1].name == "colours" else {}
        host = paint(frames, "opencv", CHAIN[:k], **extra)
        device = paint(frames, "torch", CHAIN[:k], **extra)
        db = [psnr(a, b) for a, b in zip(host, device, strict=True)]
        assert np.mean(db) >= 40.0 and min(db) >= 38.0, (name, CHAIN[k - 1].name, db)


@pytest.mark.slow
def test_the_whole_device_chain_is_as_steady_as_the_host_chain():
    """The warping-error ratio of the whole chain on the demo clip, within 5%."""
    frames = clip(demo_clip(), 40)
    host = warping_errors(paint(frames, "opencv"), frames).ratio
    device = warping_errors(paint(frames, "torch"), frames).ratio
    assert abs(device / host - 1.0) <= 0.05, (host, device)


def test_nothing_leaves_the_device_between_upload_and_download():
    """The device road on the meta device, which holds no data: any step that copied a
    frame to the host, read a number out (.item(), a Python branch on a tensor) or handed
    a tensor to numpy would raise. Only the final download may not run there."""
    frames = clip(demo_clip(), 3, side=160)
    stylizer = Stylizer("starry_night", StylizerSettings(**SETTINGS, chain="torch",
                                                         device="meta"))
    assert stylizer.on_device == torch.device("meta")
    blend, faces = Blender(), FaceKeeper()
    for frame in frames:
        work = stylizer.begin(frame, blend)
        assert work.net.device.type == "meta"
        with pytest.raises(NotImplementedError):  # "Cannot copy out of meta tensor"
            stylizer.finish(work, blend, faces)
        assert work.out.device.type == "meta" and work.out.shape[-2:] == frame.shape[:2]


def test_adding_a_step_is_one_file_and_one_line():
    """A step is a Step with a host and a device version; the stylizer runs whatever
    list it holds, in order, on either road."""
    from streamnst.engine.steps.base import Step

    class Invert(Step):
        name = "invert"

        def host(self, st, w):
            w.out = 255 - w.out

        def device(self, st, w):
            w.out = 1.0 - w.out

    frames = clip(demo_clip(), 2, side=160)
    for road in ("opencv", "torch"):
        plain = paint(frames, road)
        inverted = paint(frames, road, (*CHAIN, Invert()))
        # the device road rounds once, at the download: a level either way at a half
        assert np.abs(inverted[1].astype(int) - (255 - plain[1])).max() <= 1, road
