"""Training one style bank on two paintings: both learn, the file loads, a run continues."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli
from train_helpers import random_vgg, tiny_config

from streamnst.core.errors import InputError
from streamnst.nets.checkpoint_io import load_style
from streamnst.training.bank import BankTrainer, read_style_list
from streamnst.training.config import TrainConfig


@pytest.fixture
def two_paintings(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = cv2.GaussianBlur(rng.integers(0, 255, (48, 56, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(d / f"p{i}.png"), img)
    yy, xx = np.mgrid[0:40, 0:40]
    stripes = ((np.sin(xx / 2.0) > 0) * 255).astype(np.uint8)
    dots = ((np.sin(xx / 3.0) * np.sin(yy / 3.0) > 0.3) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "stripes.png"), np.dstack([stripes, 255 - stripes,
                                                          np.full_like(stripes, 60)]))
    cv2.imwrite(str(tmp_path / "dots.png"), np.dstack([np.full_like(dots, 200), dots, dots]))
    (tmp_path / "bank.txt").write_text("# two paintings\nstripes stripes.png\n"
                                       "dots dots.png 2.0\n")
    return tmp_path


def _config(root, **kw) -> TrainConfig:
    light = dict(noise_weight=0, motion_weight=0, content_weight=0.2)
    return tiny_config(str(root / "bank.txt"), str(root / "photos"),
                       str(root / "out" / "b.bank.pth"), **{**light, **kw})


def test_joint_run_lowers_both_style_losses(two_paintings):
    styles = read_style_list(two_paintings / "bank.txt")
    assert [s.style_weight for s in styles] == [None, 2.0]
    t = BankTrainer(_config(two_paintings, steps=60), styles, vgg=random_vgg())
    fixed = t.sampler.batch(4, torch.Generator().manual_seed(9))

    def style_losses() -> list[float]:
        out = []
        with torch.no_grad():
            for i in range(2):
                t.net.select(i)
                t.style_grams = t.grams[i]
                out.append(float(t.losses(fixed)["style"]))
        return out

    before = style_losses()
    for _ in range(60):
        t.train_step()
    after = style_losses()
    assert all(a < 0.8 * b for a, b in zip(after, before, strict=True)), (before, after)
    # each painting has modulations of its own
    m0, m1 = t.net.modulation(0), t.net.modulation(1)
    assert any((m0[k] - m1[k]).abs().max() > 1e-3 for k in m0)


@pytest.mark.slow
def test_bank_run_writes_a_bank_and_continues_from_it(two_paintings):
    styles = read_style_list(two_paintings / "bank.txt")
    t = BankTrainer(_config(two_paintings), styles, vgg=random_vgg())
    assert not t.run().interrupted
    out = two_paintings / "out" / "b.bank.pth"
    ckpt = load_style(out)  # a bank's path loads its first style
    assert ckpt.name == "stripes" and ckpt.bank == out and ckpt.training["step"] == 6
    assert (two_paintings / "out" / "b.bank.run" / "samples" / "step_000006.png").exists()
    # a fresh machine has only the bank file: it carries the trunk, modulations and step
    again = BankTrainer(_config(two_paintings, steps=8, init_from=str(out),
                                run_dir=str(two_paintings / "again")), styles, vgg=random_vgg())
    assert again.step == 6
    for i in range(2):
        saved, loaded = t.net.modulation(i), again.net.modulation(i)
        assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_style_list_errors_are_clear(tmp_path):
    (tmp_path / "one.txt").write_text("a a.png\n")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(InputError, match="at least two paintings"):
        read_style_list(tmp_path / "one.txt")
    (tmp_path / "missing.txt").write_text("a a.png\nb nope.png\n")
    with pytest.raises(InputError, match="nope.png not found"):
        read_style_list(tmp_path / "missing.txt")


@pytest.mark.slow
def test_train_bank_cli_wants_a_bank_suffix(two_paintings):
    r = run_cli("train-bank", str(two_paintings / "bank.txt"), "--data",
                str(two_paintings / "photos"), "--out", str(two_paintings / "x.pth"))
    assert_clean_error(r, "--out must end in .bank.pth")
