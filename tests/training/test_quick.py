"""`train --quick`: a new painting's modulation on the bundled bank's trunk, on the frames
that ship with the package, with the real loss network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli

from streamnst.nets.checkpoint_io import load_style, read_bank
from streamnst.training import quick as quick_module
from streamnst.training.live_warp import LiveWarpCheck
from streamnst.training.quick import (
    CHECKS,
    KEEP_FACE,
    PALETTE,
    SHADING,
    STEADIER,
    STEER_RANGE,
    QuickTrainer,
    bundled_frames,
    plan,
)


@pytest.fixture
def painting(tmp_path):
    """A painting unlike any of the bank's: wavy orange strokes on teal. (Perfectly regular
    stripes are a poor stand-in: under the doubled stabilisation the network first turns
    steady and plain, and their Gram does not move in a test's budget.)"""
    field = cv2.resize(np.random.default_rng(3).random((10, 10)).astype(np.float32),
                       (160, 160), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:160, 0:160]
    strokes = np.sin((xx + yy) / 4.0 + 6 * field) > 0
    rgb = np.where(strokes[..., None], [230, 150, 20], [20, 90, 120]).astype(np.uint8)
    path = tmp_path / "strokes.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_the_frames_that_ship_are_small_and_many():
    frames = sorted(bundled_frames().glob("*.jpg"))
    assert len(frames) >= 40
    assert sum(p.stat().st_size for p in frames) < 5_000_000


def test_quick_training_lowers_the_style_loss_and_spares_the_trunk(painting, tmp_path):
    quick = plan(painting, tmp_path / "q.pth", device="cpu", dtype="fp32", lr=0.02)
    assert quick.nearest in quick.distances and len(quick.distances) >= 2
    config = quick.config.replace(size=96, batch=2, style_size=128)
    trainer = QuickTrainer(config, quick.vgg)
    # the batch norms' scale and shift, and the output conv
    assert 1000 < trainer.trainable < 5000
    recipe = read_bank(quick.bank)["training"]
    assert quick.config.motion_weight == STEADIER * recipe["motion_weight"] > 0
    assert quick.config.noise_weight == STEADIER * recipe["noise_weight"] > 0
    # the trunk's conv weights and the bank's batch statistics stay as they were
    convs = {k: v.clone() for k, v in trainer.net.state_dict().items()
             if "conv.weight" in k or "running_" in k or k == "out.weight"}
    x = trainer.sampler.batch(2, torch.Generator().manual_seed(5))

    def style_loss() -> float:
        trainer.gen.manual_seed(7)  # the same grain and views for both measurements
        trainer.net.eval()
        with torch.no_grad():
            return float(trainer.losses(x)["style"])

    before = style_loss()
    # a small live check, so its looks leave the budget to training
    written = trainer.run_for(25.0, check=LiveWarpCheck(frames=5, side=160))
    after = style_loss()
    assert after < 0.98 * before, (before, after)
    now = trainer.net.state_dict()
    assert not torch.equal(convs.pop("out.weight"), now["out.weight"])  # trained, as EXTRA
    assert all(torch.equal(v, now[k]) for k, v in convs.items())
    # it looked at its live warp at each check, and trained on with the weights it chose
    assert len(trainer.looks) == len(CHECKS)
    assert all(f >= c for (f, _, _), c in zip(trainer.looks, CHECKS, strict=True))
    assert all(r > 0 for _, r, _ in trainer.looks)
    style = load_style(written)  # a plain style file every tool loads
    steadiness = trainer.looks[-1][2]
    assert style.training["noise_weight"] == pytest.approx(
        steadiness * quick.config.noise_weight)
    assert style.arch == "unet" and style.name == "strokes"
    assert style.palette == PALETTE > 0 and style.style["thumbnail"].shape[2] == 3
    assert style.shading == SHADING > 0 and style.keep_face == KEEP_FACE > 0
    assert style.training["init_from"].endswith(f":{quick.nearest}")


def test_a_look_at_the_live_warp_steers_the_stabilisation(painting, tmp_path, monkeypatch):
    """A ratio over the band raises the stabilisation, one under it lowers it, within
    STEER_RANGE; the next steps train with the weights chosen (a real check, on the demo
    clip, small)."""
    quick = plan(painting, tmp_path / "q.pth", device="cpu", dtype="fp32")
    trainer = QuickTrainer(quick.config.replace(size=96, batch=2, style_size=128), quick.vgg)
    check = LiveWarpCheck(frames=5, side=160)
    noise, motion = quick.config.noise_weight, quick.config.motion_weight
    monkeypatch.setattr(quick_module, "WARP_BAND", (1e-3, 2e-3))  # any real ratio is over
    trainer.look(check)
    raised = trainer.steadiness
    assert 1.0 < raised <= STEER_RANGE[1]
    assert trainer.config.noise_weight == pytest.approx(raised * noise)
    assert trainer.config.motion_weight == pytest.approx(raised * motion)
    monkeypatch.setattr(quick_module, "WARP_BAND", (1e3, 2e3))  # and now under
    ratio = trainer.look(check)
    assert STEER_RANGE[0] <= trainer.steadiness < raised
    assert [r for _, r, _ in trainer.looks][-1] == ratio > 0
    losses = trainer.train_step()
    assert losses["noise"] > 0 and losses["motion"] > 0


def test_the_command_trains_without_data_and_says_where_it_started(painting, tmp_path):
    out = tmp_path / "strokes.pth"
    result = run_cli("train", painting, "--quick", "--minutes", "0.1", "--out", out,
                     "--device", "cpu", timeout=240)
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "starting from" in said
    assert 1 <= said.count("live warp") <= len(CHECKS)  # its looks (a slow one spans checks)
    assert load_style(out).name == "strokes"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    assert_clean_error(run_cli("train", broken, "--quick", "--out", tmp_path / "b.pth"),
                       "broken.jpg")
    assert not (tmp_path / "b.pth").exists()
    assert_clean_error(run_cli("train", painting, "--out", tmp_path / "c.pth"), "--data")
