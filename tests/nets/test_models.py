import pytest
import torch

from streamnst.nets import TransformerNet, UNet, build_model, run_padded
from streamnst.nets.transformer_net import clean_state_dict


@pytest.mark.parametrize("norm", ["batch", "none", "instance"])
@pytest.mark.parametrize("size", [(1, 1), (17, 23), (33, 64), (90, 61)])
def test_unet_any_size_in_range(norm, size):
    net = UNet(width=4, res_convs=2, norm=norm).eval()
    x = torch.rand(2, 3, *size)
    y = run_padded(net, x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("head", ["identity", "plain"])
@pytest.mark.parametrize("size", [(1, 1), (17, 23), (90, 61)])
def test_shuffle_ends_any_size_and_no_checkerboard_at_start(head, size):
    torch.manual_seed(0)
    net = UNet(width=4, res_convs=2, head=head, ends="shuffle").eval()
    x = torch.rand(1, 3, *size)
    y = run_padded(net, x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    if head == "plain":  # sub-pixel init: the four pixels of each 2x2 block start equal
        with torch.no_grad():
            z = net(torch.rand(1, 3, 32, 48))
        assert torch.allclose(z[..., 0::2, 0::2], z[..., 1::2, 1::2])
        assert torch.allclose(z[..., 0::2, 1::2], z[..., 1::2, 0::2])
    assert net.config["ends"] == "shuffle"
    config = UNet(width=4, res_convs=2).config  # today's network, every setting named
    assert (config["ends"], config["head"], config["pad"]) == ("shuffle", "plain", "mixed")
    with pytest.raises(ValueError, match="ends"):
        UNet(ends="half")


def test_shuffle_ends_never_compute_at_full_resolution():
    """Every conv of the shuffle layout sees at most half the frame's size."""
    net = UNet(width=4, res_convs=2, ends="shuffle").eval()
    seen = []
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[-1]))
    with torch.no_grad():
        net(torch.rand(1, 3, 32, 64))
    assert seen and max(seen) == 32


def test_unet_needs_stride_multiple_without_padding():
    net = UNet(width=4, res_convs=2).eval()
    with pytest.raises(RuntimeError):
        net(torch.rand(1, 3, 20, 20))  # run_padded is what makes any size work


def test_unet_width_and_depth_are_configurable():
    small, wide = UNet(width=4, res_convs=2), UNet(width=8, res_convs=6)
    n_small = sum(p.numel() for p in small.parameters())
    n_wide = sum(p.numel() for p in wide.parameters())
    assert n_wide > 4 * n_small
    assert len(wide.res) == 3
    with pytest.raises(ValueError):
        UNet(res_convs=3)


def test_fused_batchnorm_matches_eval_network():
    net = UNet(width=4, res_convs=2).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
    x = torch.rand(1, 3, 40, 48)
    ref = run_padded(net, x)
    import copy
    fused = copy.deepcopy(net).fuse()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    torch.testing.assert_close(run_padded(fused, x), ref, atol=1e-5, rtol=1e-4)


def test_fuse_refuses_training_mode():
    with pytest.raises(RuntimeError):
        UNet(width=4, res_convs=2).train().fuse()


def _reference_keys() -> dict[str, tuple]:
    """pytorch/examples fast_neural_style TransformerNet: parameter names and shapes."""
    keys = {}

    def conv(name, cin, cout, k):
        keys[f"{name}.conv2d.weight"] = (cout, cin, k, k)
        keys[f"{name}.conv2d.bias"] = (cout,)

    def norm(name, c):
        keys[f"{name}.weight"] = (c,)
        keys[f"{name}.bias"] = (c,)

    conv("conv1", 3, 32, 9), norm("in1", 32)
    conv("conv2", 32, 64, 3), norm("in2", 64)
    conv("conv3", 64, 128, 3), norm("in3", 128)
    for i in range(1, 6):
        conv(f"res{i}.conv1", 128, 128, 3), norm(f"res{i}.in1", 128)
        conv(f"res{i}.conv2", 128, 128, 3), norm(f"res{i}.in2", 128)
    conv("deconv1", 128, 64, 3), norm("in4", 64)
    conv("deconv2", 64, 32, 3), norm("in5", 32)
    conv("deconv3", 32, 3, 9)
    return keys


def test_transformer_net_has_pytorch_examples_layout():
    state = TransformerNet().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == _reference_keys()


def test_transformer_net_any_size_and_range():
    net = TransformerNet().eval()
    x = torch.rand(1, 3, 37, 45)
    y = run_padded(net, x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1


def test_old_checkpoint_running_stats_are_dropped():
    state = TransformerNet().state_dict()
    old = dict(state)
    old["in1.running_mean"] = torch.zeros(32)
    old["res3.in2.running_var"] = torch.ones(128)
    assert set(clean_state_dict(old)) == set(state)


def test_build_model_rejects_unknown_arch():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vgg")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_space_to_depth_as_a_conv_is_pixel_unshuffle_exactly(dtype):
    import torch.nn.functional as F

    from streamnst.nets.unet import space_to_depth

    x = torch.rand(2, 3, 48, 64).to(dtype)
    with torch.inference_mode():  # a live frame first: the weight it caches must train
        space_to_depth(x)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = x.contiguous(memory_format=layout)
        assert torch.equal(space_to_depth(x), F.pixel_unshuffle(x, 2))
    grad = torch.rand(1, 3, 8, 8, requires_grad=True)
    space_to_depth(grad).sum().backward()  # trains through it: each pixel used once
    assert torch.equal(grad.grad, torch.ones_like(grad))
