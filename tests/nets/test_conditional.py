"""The style bank: per-style batch-norm rows on one trunk, folded for inference."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import random_bank

from streamnst.core.errors import CheckpointError
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
    apply_modulation,
    mix_modulations,
    modulation_of,
)


def _x() -> torch.Tensor:
    return torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))


def test_exported_and_folded_style_matches_the_bank():
    bank = random_bank()
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
    bank = random_bank(2)
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
    bank = random_bank()
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


def test_a_bank_file_names_one_of_its_styles_after_a_colon(tmp_path):
    bank = random_bank(2)
    path = save_bank(tmp_path / "shared.bank.pth", bank, [{"name": "a"}, {"name": "b"}])
    ckpt = load_style(f"{path}:b")  # a bank someone sent, used without installing it
    assert ckpt.name == "b" and ckpt.bank == path
    x = _x()
    with torch.no_grad():
        assert torch.allclose(run_padded(ckpt.model, x), run_padded(bank.select(1), x),
                              atol=1e-5)
    with pytest.raises(CheckpointError, match="has no style 'c' .*it has a, b"):
        load_style(f"{path}:c")


def test_a_broken_bank_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.bank.pth"
    torch.save({"format": "streamnst-bank", "version": 1, "arch_args": {}, "trunk": {},
                "styles": "nope"}, path)
    with pytest.raises(CheckpointError, match="needs arch_args, trunk and styles"):
        load_style(path)


def test_a_stylizer_repaints_with_its_banks_styles_and_mixes(tmp_path):
    import time

    import numpy as np

    from streamnst.engine.stylizer import Stylizer, StylizerSettings

    path = save_bank(tmp_path / "two.bank.pth", random_bank(2), [{"name": "a"}, {"name": "b"}])
    frame = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    settings = StylizerSettings(device="cpu", dtype="fp32")
    a = Stylizer(load_style(path), settings)
    b_alone = Stylizer(style_from_bank(path, read_checkpoint_file(path), 1), settings)
    a.restyled("a")  # the first fold reads the bank; later ones find it in memory
    t0 = time.perf_counter()
    b = a.restyled("b")
    switch_s = time.perf_counter() - t0
    assert b.name == "b" and np.array_equal(b.stylize(frame), b_alone.stylize(frame))
    assert not np.array_equal(a.stylize(frame), b.stylize(frame))
    half = a.restyled("a", ("b", 0.5))
    mixed = half.stylize(frame).astype(int)
    ends = a.stylize(frame).astype(int), b.stylize(frame).astype(int)
    assert half.name == "a" and half.checkpoint.style["mix"] == ["b", 0.5]
    apart = np.abs(ends[0] - ends[1]).mean()
    # between the two, at neither end
    assert apart > 1 and all(0 < np.abs(mixed - end).mean() < apart for end in ends)
    assert np.array_equal(a.restyled("a", ("b", 0.0)).stylize(frame), ends[0])
    assert switch_s < 1.0  # a fold, not a load (the live figure is in docs/benchmarks.md)
    assert a.restyled("no_such_style") is None  # not in the bank: the caller loads a file
    with pytest.raises(CheckpointError, match="not in one bank"):
        a.restyled("a", ("elsewhere", 0.5))
    plain = save_style(tmp_path / "plain.pth", UNet(width=4, res_convs=2), "unet",
                       style={"name": "plain"})
    assert Stylizer(plain, settings).restyled("a") is None
