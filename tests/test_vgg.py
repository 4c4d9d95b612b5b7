import h5py
import numpy as np
import pytest
import torch
from torchvision.models import vgg16

from streamnst.errors import WeightsError
from streamnst.vgg import CAFFE_BGR, CONV_INDEX, VGGFeatures, convert_hed_h5, load_vgg


def _write_hed_like_h5(path, rng):
    """The Keras-3 layout of HED's weights: block{B}/layers/conv2d*/vars/{0,1}, named."""
    shapes = {k: v.shape for k, v in vgg16(weights=None).features.state_dict().items()}
    kernels = {}
    with h5py.File(path, "w") as f:
        for block in range(1, 6):
            names = [n for n in CONV_INDEX if n.startswith(f"block{block}_")]
            # keys in the file do not follow the layer order: mapping must use the names
            for key_i, name in enumerate(reversed(names)):
                idx = CONV_INDEX[name]
                o, i, kh, kw = shapes[f"{idx}.weight"]
                hwio = rng.standard_normal((kh, kw, i, o)).astype(np.float32)
                bias = rng.standard_normal(o).astype(np.float32)
                suffix = "" if key_i == 0 else f"_{key_i}"
                g = f.create_group(f"block{block}/layers/conv2d{suffix}/vars")
                g.attrs["name"] = name
                g.create_dataset("0", data=hwio)
                g.create_dataset("1", data=bias)
                kernels[name] = (hwio, bias)
        side = f.create_group("dsn1/layers/conv2d/vars")  # HED side output: ignored
        side.attrs["name"] = "dsn1_conv"
        side.create_dataset("0", data=np.zeros((1, 1, 64, 1), np.float32))
    return kernels


def test_h5_conversion_maps_all_13_convs(tmp_path):
    kernels = _write_hed_like_h5(tmp_path / "hed.h5", np.random.default_rng(0))
    out = convert_hed_h5(tmp_path / "hed.h5", tmp_path / "vgg.pth")
    data = torch.load(out, weights_only=True)
    assert data["convention"] == CAFFE_BGR
    state = data["state_dict"]
    assert len(state) == 26
    for name, (hwio, bias) in kernels.items():
        idx = CONV_INDEX[name]
        assert torch.equal(state[f"{idx}.weight"], torch.from_numpy(hwio).permute(3, 2, 0, 1))
        assert torch.equal(state[f"{idx}.bias"], torch.from_numpy(bias))
    vgg = load_vgg(out, layers=("relu1_2", "relu5_3"))
    assert vgg.convention == CAFFE_BGR
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert feats["relu5_3"].shape == (1, 512, 2, 2)


def test_h5_with_missing_convs_is_rejected(tmp_path):
    with h5py.File(tmp_path / "few.h5", "w") as f:
        g = f.create_group("block1/layers/conv2d/vars")
        g.attrs["name"] = "block1_conv1"
        g.create_dataset("0", data=np.zeros((3, 3, 3, 64), np.float32))
        g.create_dataset("1", data=np.zeros(64, np.float32))
    with pytest.raises(WeightsError, match="1 of VGG16's 13 convs"):
        convert_hed_h5(tmp_path / "few.h5", tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()


def test_caffe_preprocessing_is_bgr_255_mean_subtracted():
    vgg = VGGFeatures(None, CAFFE_BGR, ("relu1_1",))
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    p = vgg.preprocess(x)
    assert torch.allclose(p[0, :, 0, 0], torch.tensor([-104.00699, -116.66877, 255 - 122.67892]))
    assert x[:, 0].eq(1).all()  # input untouched


def test_torchvision_file_is_used(tmp_path):
    features = vgg16(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()},
               tmp_path / "vgg16.pth")
    vgg = load_vgg(tmp_path / "vgg16.pth", layers=("relu2_2",))
    assert vgg.convention == "torchvision"
    assert torch.equal(vgg.features[2].weight, features[2].weight)


def test_missing_weights_error_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError) as info:
        load_vgg()
    assert "streamnst fetch-vgg" in str(info.value)
    with pytest.raises(WeightsError, match="not found"):
        load_vgg(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="junk.pth"):
        load_vgg(tmp_path / "junk.pth")


def test_upto_stops_after_that_layer_and_matches_the_full_pass():
    torch.manual_seed(0)
    vgg = VGGFeatures(vgg16(weights=None).features.state_dict(), "torchvision",
                      ("relu1_2", "relu2_2", "relu3_3"))
    x = torch.rand(1, 3, 32, 32)
    full, short = vgg(x), vgg(x, upto="relu2_2")
    assert set(short) == {"relu1_2", "relu2_2"}
    assert torch.equal(short["relu2_2"], full["relu2_2"])
    for name in ("relu4_3", "pool9"):  # not computed here / not a layer at all
        with pytest.raises(WeightsError, match=name):
            vgg(x, upto=name)
