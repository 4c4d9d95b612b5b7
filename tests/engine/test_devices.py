"""The shipped style, the bench and the live pipeline on every device this machine has: the
CPU always, and CUDA where torch sees a GPU. tools/gpu_check.sh runs this file on a GPU
machine; in CI it runs the same checks on the CPU, so neither side goes stale."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import BlendSettings
from streamnst.live.pipeline import Pipeline
from streamnst.live.sinks import NullSink
from streamnst.live.sources import PatternSource
from streamnst.media.demo import demo_clip
from streamnst.media.imageio import resize_max_side
from streamnst.offline.bench import run_bench
from streamnst.offline.metrics import read_frames

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def demo_frame() -> np.ndarray:
    *_, frame = read_frames(demo_clip(), 40)
    return resize_max_side(frame, 320)


@pytest.mark.parametrize("device", DEVICES)
def test_shipped_style_in_reduced_precision_matches_fp32(device, demo_frame):
    """The default dtype (bf16 on a CPU that has it, fp16 on CUDA) paints what fp32 paints,
    and fp32 on the device paints what fp32 on the CPU paints."""
    def paint(dev: str, dtype: str) -> np.ndarray:
        stylizer = Stylizer("starry_night", StylizerSettings(device=dev, dtype=dtype))
        return stylizer.stylize(demo_frame).astype(np.float32)

    reference = paint("cpu", "fp32")
    fast = Stylizer("starry_night", StylizerSettings(device=device))
    assert fast.device.type == device
    assert np.abs(fast.stylize(demo_frame) - reference).mean() < 4.0  # of 255
    assert np.abs(paint(device, "fp32") - reference).mean() < 1.0
    assert np.abs(reference - demo_frame).mean() > 10.0  # it did paint


@pytest.mark.parametrize("device", DEVICES)
def test_bench_times_each_backend_of_the_device(device):
    rows = run_bench(["tiny"], repeat=2, warmup=1, device=device,
                     network_names=["unet-w16"], sizes={"tiny": (48, 64)})
    backends = {r.backend for r in rows}
    assert "eager-fp32" in backends
    if device == "cuda":
        assert "fp16" in backends
    assert all(r.median_ms > 0 and r.fps > 0 for r in rows)


@pytest.mark.parametrize("device", DEVICES)
def test_live_pipeline_runs_on_the_device_with_the_flow_blend(device):
    stylizer = Stylizer("starry_night", StylizerSettings(device=device, max_side=160))
    pipe = Pipeline(PatternSource(160, 96, fps=30), stylizer, [NullSink()],
                    blend=BlendSettings(mode="flow"), max_frames=20).start()
    deadline = time.monotonic() + 60
    while not pipe.wait(0.1) and time.monotonic() < deadline:
        pass
    s = pipe.stop()
    assert s.frames_out == 20 and s.frame_failures == 0
    assert s.device.startswith(device) and s.blend == "flow"
    assert {"network", "flow", "blend"} <= set(s.stages_ms)
