import pickle

import pytest
import torch

from streamnst.core.errors import CheckpointError
from streamnst.nets import TransformerNet, UNet
from streamnst.nets.checkpoint_io import available_styles, load_style, resolve_style, save_style


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    net = UNet(width=4, res_convs=4)
    thumb = torch.randint(0, 255, (8, 8, 3), dtype=torch.uint8)
    path = save_style(tmp_path / "s.pth", net, "unet",
                      style={"name": "sunny", "image": "x.jpg", "thumbnail": thumb},
                      training={"steps": 7, "style_weight": 3.0})
    ckpt = load_style(path)
    assert ckpt.name == "sunny" and ckpt.arch == "unet"
    assert ckpt.arch_args == {"width": 4, "res_convs": 4, "norm": "batch", "up": "bilinear",
                              "down": "pool", "fine_blocks": 0, "head": "plain",
                              "ends": "shuffle", "pad": "mixed"}
    assert ckpt.training["steps"] == 7
    assert torch.equal(ckpt.style["thumbnail"], thumb)
    for k, v in net.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[k], v)
    assert not ckpt.model.training


def test_unet_files_from_before_the_sampling_settings_keep_their_architecture(tmp_path):
    old = UNet(width=4, res_convs=2, up="nearest", down="stride", head="identity", ends="full")
    old.config = {"width": 4, "res_convs": 2, "norm": "batch"}  # as the first release wrote
    path = save_style(tmp_path / "old.pth", old, "unet", style={"name": "old"}, training={})
    data = torch.load(path, weights_only=True)
    data["version"] = 1  # what that release stamped on it
    torch.save(data, path)
    loaded = load_style(path).model
    assert (loaded.config["up"], loaded.config["down"]) == ("nearest", "stride")
    assert (loaded.config["head"], loaded.config["ends"]) == ("identity", "full")
    old.eval()
    x = torch.rand(1, 3, 16, 24)
    # two instances of one network: oneDNN may take different float32 paths for each
    # (alignment), so allow float32 rounding (1e-6) instead of allclose's default 1e-8
    # absolute, which failed about one run in six on outputs near 0
    with torch.no_grad():
        assert torch.allclose(loaded(x), old(x), atol=1e-6)


def test_fine_blocks_round_trip_and_change_the_network(tmp_path):
    torch.manual_seed(0)
    net = UNet(width=4, res_convs=2, fine_blocks=1).eval()
    plain = UNet(width=4, res_convs=2).eval()
    assert plain.config["fine_blocks"] == 0
    assert len(net.state_dict()) > len(plain.state_dict())
    loaded = load_style(save_style(tmp_path / "f.pth", net, "unet", style={}, training={}))
    assert loaded.arch_args["fine_blocks"] == 1
    x = torch.rand(1, 3, 16, 24)
    assert torch.allclose(loaded.model(x), net(x))


def test_pytorch_examples_state_dict_loads_with_old_keys(tmp_path):
    ref = TransformerNet()
    state = ref.state_dict()
    state["in1.running_mean"] = torch.zeros(32)  # as saved by torch < 0.4
    state["in1.running_var"] = torch.ones(32)
    torch.save(state, tmp_path / "mosaic.pth")
    ckpt = load_style(tmp_path / "mosaic.pth")
    assert ckpt.arch == "transformer_net" and ckpt.name == "mosaic"
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(ckpt.model(x), ref.eval()(x))


def _msg(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_style(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    assert "not found" in _msg(tmp_path / "nope.pth")


def test_truncated_file(tmp_path, tiny_style):
    data = tiny_style.read_bytes()
    bad = tmp_path / "cut.pth"
    bad.write_bytes(data[: len(data) // 2])
    msg = _msg(bad)
    assert str(bad) in msg and "truncated" in msg


def test_foreign_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    assert "not a torch checkpoint" in _msg(junk) or "truncated" in _msg(junk)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    assert "not a streamnst style" in _msg(other)
    listed = tmp_path / "list.pth"
    torch.save([1, 2, 3], listed)
    assert "not a style checkpoint" in _msg(listed)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"format": "streamnst-style", "payload": _Evil()}, path,
               pickle_protocol=pickle.DEFAULT_PROTOCOL)
    assert "refused" in _msg(path)


def test_mismatched_architecture(tmp_path):
    path = save_style(tmp_path / "w.pth", UNet(width=4, res_convs=2), "unet", style={})
    data = torch.load(path, weights_only=True)
    data["arch_args"]["width"] = 8
    torch.save(data, path)
    msg = _msg(path)
    assert "does not match unet" in msg and "shape mismatches" in msg


def test_missing_keys_and_bad_args(tmp_path):
    path = save_style(tmp_path / "m.pth", UNet(width=4, res_convs=2), "unet", style={})
    data = torch.load(path, weights_only=True)
    del data["state_dict"]["out.weight"]
    torch.save(data, path)
    assert "missing keys" in _msg(path)
    data["arch_args"] = {"width": 4, "colour": "red"}
    torch.save(data, path)
    assert "bad arguments" in _msg(path)


def test_newer_version_and_unknown_arch(tmp_path):
    path = save_style(tmp_path / "v.pth", UNet(width=4, res_convs=2), "unet", style={})
    data = torch.load(path, weights_only=True)
    data["version"] = 99
    torch.save(data, path)
    assert "upgrade streamnst" in _msg(path)
    data["version"], data["arch"] = 1, "mystery"
    torch.save(data, path)
    assert "unknown architecture" in _msg(path)


def test_names_resolve_through_user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMNST_HOME", str(tmp_path))
    target = save_style(tmp_path / "checkpoints" / "mine.pth", UNet(width=4, res_convs=2),
                        "unet", style={"name": "mine"})
    assert available_styles()["mine"] == target
    assert resolve_style("mine") == target
    with pytest.raises(CheckpointError, match="unknown style 'nothing'"):
        resolve_style("nothing")


def test_save_is_atomic(tmp_path, monkeypatch):
    good = save_style(tmp_path / "a.pth", UNet(width=4, res_convs=2), "unet", style={})
    before = good.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_style(good, UNet(width=4, res_convs=2), "unet", style={})
    assert good.read_bytes() == before
    assert list(tmp_path.iterdir()) == [good]


def test_written_files_get_the_permissions_open_would_give(tmp_path):
    """mkstemp's 0600 must not leak into results people share (recordings, styles)."""
    import os
    import stat

    from streamnst.core.atomic import _UMASK, atomic_path

    with atomic_path(tmp_path / "shared.mp4") as tmp:
        tmp.write_bytes(b"x")
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600  # private while half-written
    mode = stat.S_IMODE((tmp_path / "shared.mp4").stat().st_mode)
    assert mode == 0o666 & ~_UMASK and mode & 0o044, oct(mode)
    with open(tmp_path / "plain", "w"):
        pass
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)

