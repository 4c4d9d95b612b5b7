import numpy as np
import onnxruntime as ort
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli

from streamnst.engine.runner import ModelSettings, OnnxRunner
from streamnst.engine.stylizer import Stylizer, StylizerSettings
from streamnst.nets import run_padded
from streamnst.nets.checkpoint_io import load_style
from streamnst.nets.onnx_io import OnnxModel, export_onnx


@pytest.fixture(params=["full", "shuffle"])
def any_style(request, tmp_path, tiny_style):
    """The first releases' layout and today's (space-to-depth in, pixel shuffle out)."""
    if request.param == "full":
        return tiny_style
    from streamnst.nets import UNet
    from streamnst.nets.checkpoint_io import save_style

    torch.manual_seed(4)
    net = UNet(width=4, res_convs=2, head="plain", ends="shuffle").eval()
    return save_style(tmp_path / "shuffle.pth", net, "unet", style={"name": "tiny"})


def test_exported_graph_matches_torch_at_several_sizes(tmp_path, any_style):
    ckpt = load_style(any_style)
    path = export_onnx(ckpt, tmp_path / "tiny.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["style"] == "tiny" and meta["stride"] == "8"
    for h, w in ((32, 48), (64, 40), (96, 128)):
        x = torch.rand(1, 3, h, w)
        (y,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            ref = ckpt.model(x)
        assert y.shape == (1, 3, h, w)
        assert np.abs(y - ref.numpy()).max() < 1e-4  # fp32 graph, fused batch norm


def test_onnx_backend_matches_torch_backend(tiny_style):
    img = np.random.default_rng(0).integers(0, 256, (45, 67, 3), dtype=np.uint8)
    a = Stylizer(tiny_style, StylizerSettings(device="cpu", dtype="fp32")).stylize(img)
    onnx = Stylizer(tiny_style, StylizerSettings(device="cpu", backend="onnx"))
    b = onnx.stylize(img)
    assert onnx.describe()["backend"] == "onnx" and onnx.dtype_name == "fp32"
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_the_onnx_runner_pads_like_torch(tmp_path, tiny_style):
    ckpt = load_style(tiny_style)
    model = OnnxModel(export_onnx(ckpt, tmp_path / "t.onnx"), torch.device("cpu"))
    assert (model.stride, model.margin) == (ckpt.model.STRIDE, ckpt.model.MARGIN)  # recorded
    runner = OnnxRunner(ckpt, ModelSettings(device="cpu"))
    x = torch.rand(1, 3, 21, 35)
    torch.testing.assert_close(runner.run_padded(x), run_padded(ckpt.model, x), atol=1e-4,
                               rtol=1e-4)


@pytest.mark.slow
def test_export_cli(tmp_path, tiny_style):
    out = tmp_path / "x.onnx"
    r = run_cli("export", tiny_style, out)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000
    assert_clean_error(run_cli("export", tiny_style, out), "exists")
    assert_clean_error(run_cli("export", tiny_style, tmp_path / "x.bin"), ".onnx")
    assert_clean_error(run_cli("export", "missing_style", tmp_path / "y.onnx"), "unknown style")


@pytest.mark.slow
def test_stylize_cli_with_onnx_backend(tmp_path, tiny_style):
    import cv2
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((20, 30, 3), 128, np.uint8))
    r = run_cli("stylize", src, tmp_path / "onnx.png", "--style", tiny_style, "--backend", "onnx")
    assert r.returncode == 0, r.stderr
    r = run_cli("stylize", src, tmp_path / "torch.png", "--style", tiny_style, "--dtype", "fp32")
    assert r.returncode == 0, r.stderr
    from streamnst.media.imageio import read_image
    a, b = read_image(tmp_path / "onnx.png"), read_image(tmp_path / "torch.png")
    assert a.shape == (20, 30, 3) and np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_bad_backend_is_refused():
    from streamnst.core.errors import InputError
    with pytest.raises(InputError, match="backend"):
        StylizerSettings(backend="tensorrt")
