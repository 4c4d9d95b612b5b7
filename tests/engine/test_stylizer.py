import numpy as np
import pytest
import torch

from streamnst.core.errors import DeviceError, InputError
from streamnst.core.frame import Frame
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.engine.temporal import Blender
from streamnst.media.tensors import image_to_tensor, tensor_to_image


def test_tensor_round_trip_is_exact():
    img = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    assert np.array_equal(tensor_to_image(image_to_tensor(img, torch.device("cpu"))), img)


@pytest.mark.parametrize("shape", [(1, 1, 3), (31, 17, 3), (48, 64, 3), (75, 101, 3)])
def test_any_frame_size(tiny_style, shape):
    s = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32"))
    img = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = s.stylize(img)
    assert out.shape == shape and out.dtype == np.uint8


def test_fused_fp32_matches_the_checkpoint_network(tiny_style):
    from streamnst.nets import run_padded
    from streamnst.nets.checkpoint_io import load_style

    s = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32", channels_last="on"))
    img = np.random.default_rng(2).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    ref = run_padded(load_style(tiny_style).model, image_to_tensor(img, torch.device("cpu")))
    assert np.abs(s.stylize(img).astype(int) - tensor_to_image(ref).astype(int)).max() <= 1


def test_bf16_is_close_to_fp32(tiny_style):
    img = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32")).stylize(img)
    s = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="bf16"))
    assert s.runner.native and next(s.runner.model.parameters()).dtype == torch.bfloat16
    b = s.stylize(img)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_internal_scale_returns_full_size(tiny_style):
    s = Stylizer(tiny_style, StylizerSettings(device="cpu", scale=0.5))
    out = s.stylize(np.zeros((60, 80, 3), np.uint8))
    assert out.shape == (60, 80, 3)


def test_max_side_caps_the_working_size(tiny_style):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    capped = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32", max_side=40))
    half = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32", scale=0.5))
    full = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32"))
    assert capped.scale_for(60, 80) == 0.5 and capped.scale_for(20, 30) == 1.0
    both = Stylizer(tiny_style, StylizerSettings(device="cpu", max_side=40, scale=0.5))
    assert both.scale_for(60, 80) == 0.25  # a scale is of the capped working size
    out = capped.stylize(img)
    assert out.shape == img.shape
    assert np.array_equal(out, half.stylize(img))
    assert not np.array_equal(out, full.stylize(img))


def test_blend_runs_at_the_working_size(tiny_style):
    seen = []

    class Recording(Blender):
        def __call__(self, work_in, work_out, motion=None):
            seen.append((work_in.shape, work_out.shape))
            return np.full_like(work_out, 200)

    s = Stylizer(tiny_style, StylizerSettings(device="cpu", max_side=40))
    out = s.stylize(np.zeros((60, 80, 3), np.uint8), Recording())
    assert seen == [((30, 40, 3), (30, 40, 3))]
    assert out.shape == (60, 80, 3) and (out == 200).all()  # the blend's result, resized


def test_frame_keeps_index_and_timestamp(tiny_style):
    s = Stylizer(tiny_style, StylizerSettings(device="cpu"))
    f = Frame(np.zeros((16, 16, 3), np.uint8), index=5, timestamp=12.5)
    g = s.stylize_frame(f)
    assert (g.index, g.timestamp) == (5, 12.5) and g.image.shape == (16, 16, 3)


def test_bad_frames_and_settings(tiny_style):
    s = Stylizer(tiny_style, StylizerSettings(device="cpu"))
    with pytest.raises(InputError, match="HxWx3 uint8"):
        s.stylize(np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="HxWx3 uint8"):
        s.stylize(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="scale"):
        StylizerSettings(scale=0)
    with pytest.raises(DeviceError, match="fp16 is for GPUs"):
        Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp16"))
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            Stylizer(tiny_style, StylizerSettings(device="cuda"))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_frames_padded_as_bytes_match_the_padded_tensor_path(tiny_style, backend):
    """stylize pads the uint8 frame in OpenCV (cheap); stylize_tensor pads the tensor
    (run_padded): the same reflection, so the same picture, down to odd tiny sizes. (The
    host chain rounds its bytes in OpenCV, half to even, where tensor_to_image rounds half
    up: a float32 that lands within an ulp of a half may differ by one level.)"""
    rng = np.random.default_rng(1)
    s = Stylizer(tiny_style, StylizerSettings(dtype="fp32", backend=backend))
    for shape in [(360, 640, 3), (37, 51, 3), (5, 7, 3)]:
        image = rng.integers(0, 255, shape, dtype=np.uint8)
        direct = tensor_to_image(s.stylize_tensor(image_to_tensor(image, s.device)))
        diff = np.abs(s.stylize(image).astype(int) - direct)
        assert diff.max() <= 1 and np.count_nonzero(diff) <= max(1, diff.size // 20000), shape
