"""The style bank: per-style batch-norm rows on one trunk, folded for inference."""

from __future__ import annotations

import copy

import pytest
import torch

from streamnst.core.errors import CheckpointError, InputError
from streamnst.nets import UNet, run_padded
from streamnst.nets.checkpoint_io import (
    available_styles,
    load_style,
    read_checkpoint_file,
    save_bank,
    save_style,
    style_from_bank,
)
from streamnst.nets.conditional import (
    StyleBank,
    apply_modulation,
    mix_modulations,
    modulation_of,
)


def _bank(styles: int = 3) -> StyleBank:
    torch.manual_seed(0)
    bank = StyleBank(styles, width=4, res_convs=2, head="plain", ends="shuffle")
    with torch.no_grad():  # every style its own rows, none at the defaults
        for bn in bank.norms.values():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return bank.eval()


def _x() -> torch.Tensor:
    return torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))


def test_exported_and_folded_style_matches_the_bank():
    bank = _bank()
    x = _x()
    for s in range(bank.styles):
        with torch.no_grad():
            want = run_padded(bank.select(s), x)
            plain = bank.export(s)
            got = run_padded(plain, x)
            folded = run_padded(copy.deepcopy(plain).fuse(), x)
            folded_bf16 = run_padded(copy.deepcopy(plain).fuse().to(torch.bfloat16),
                                     x.to(torch.bfloat16)).float()
        assert torch.allclose(got, want, atol=1e-5)
        assert torch.allclose(folded, want, atol=1e-4)
        assert (folded_bf16 - want).abs().max() < 0.05
    # the styles really differ, so the checks above could fail
    with torch.no_grad():
        assert (run_padded(bank.select(0), x) - run_padded(bank.select(1), x)).abs().max() > 0.01


def test_mix_is_the_styles_at_its_ends_and_between_them():
    bank = _bank(2)
    mods = [bank.modulation(0), bank.modulation(1)]
    net = bank.export(0)
    x = _x()
    outs = []
    for w in (0.0, 0.5, 1.0):
        apply_modulation(net, mix_modulations(mods, [1 - w, w]))
        with torch.no_grad():
            outs.append(run_padded(net, x))
    with torch.no_grad():
        a, b = run_padded(bank.select(0), x), run_padded(bank.select(1), x)
    assert torch.allclose(outs[0], a, atol=1e-5)
    assert torch.allclose(outs[2], b, atol=1e-5)
    mid = outs[1]
    assert (mid - a).abs().max() > 1e-3 and (mid - b).abs().max() > 1e-3
    # halfway, each channel's affine map (what the folded conv applies) is the mean of both
    half = mix_modulations(mods, [1.0, 1.0])
    for name, rows in half.items():
        maps = [m[name][0] / torch.sqrt(m[name][3] + 1e-5) for m in mods]
        assert torch.allclose(rows[0], (maps[0] + maps[1]) / 2, atol=1e-6)


def test_modulation_must_fit_the_network():
    mod = modulation_of(UNet(width=4, res_convs=2))
    with pytest.raises(ValueError):
        apply_modulation(UNet(width=8, res_convs=2), mod)
    with pytest.raises(ValueError):
        mix_modulations([mod], [0.0])


def test_bank_file_round_trips_and_lists_every_style(tmp_path, monkeypatch):
    bank = _bank()
    home = tmp_path / "home"
    monkeypatch.setenv("STREAMNST_HOME", str(home))
    path = home / "checkpoints" / "mine.bank.pth"
    names = ["alpha", "beta", "gamma"]
    save_bank(path, bank, [{"name": n, "image": f"{n}.jpg", "canvas": 4.0} for n in names],
              {"step": 7})
    found = available_styles()
    assert {n: found[n] for n in names} == dict.fromkeys(names, path)
    x = _x()
    for s, name in enumerate(names):
        ckpt = load_style(name)
        assert ckpt.name == name and ckpt.bank == path and ckpt.canvas == 4.0
        assert ckpt.training["step"] == 7
        with torch.no_grad():
            assert torch.allclose(run_padded(ckpt.model, x), run_padded(bank.select(s), x),
                                  atol=1e-5)


def test_a_broken_bank_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.bank.pth"
    torch.save({"format": "streamnst-bank", "version": 1, "arch_args": {}, "trunk": {},
                "styles": "nope"}, path)
    with pytest.raises(CheckpointError, match="needs arch_args, trunk and styles"):
        load_style(path)


def test_a_stylizer_switches_and_mixes_bank_styles_in_place(tmp_path):
    import time

    import numpy as np

    from streamnst.engine.stylizer import Stylizer, StylizerSettings

    bank = _bank(2)
    path = save_bank(tmp_path / "two.bank.pth", bank, [{"name": "a"}, {"name": "b"}])
    frame = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    settings = StylizerSettings(device="cpu", dtype="fp32")
    a, b = Stylizer(load_style(path), settings), Stylizer(load_style(path), settings)
    b_alone = Stylizer(style_from_bank(path, read_checkpoint_file(path), 1), settings)
    t0 = time.perf_counter()
    a.set_modulation(bank.modulation(1))
    switch_s = time.perf_counter() - t0
    assert np.array_equal(a.stylize(frame), b_alone.stylize(frame))
    assert not np.array_equal(b.stylize(frame), b_alone.stylize(frame))
    mods = [bank.modulation(0), bank.modulation(1)]
    a.set_modulation(mix_modulations(mods, [0.5, 0.5]))
    mixed = a.stylize(frame)
    assert not np.array_equal(mixed, b.stylize(frame))
    assert not np.array_equal(mixed, b_alone.stylize(frame))
    assert switch_s < 1.0  # a fold, not a load (the live figure is in docs/benchmarks.md)
    plain = save_style(tmp_path / "plain.pth", UNet(width=4, res_convs=2), "unet",
                       style={"name": "plain"})
    with pytest.raises(InputError, match="only a style from a bank"):
        Stylizer(plain, settings).set_modulation(mods[0])
