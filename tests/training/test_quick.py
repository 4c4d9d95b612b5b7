"""`train --quick`: a new painting's modulation on the bundled bank's trunk, on the frames
that ship with the package, with the real loss network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli

from streamnst.nets.checkpoint_io import load_style, read_bank
from streamnst.training.quick import (
    PALETTE,
    SHADING,
    STEADIER,
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


def test_quick_training_lowers_the_style_loss_and_touches_only_the_modulation(painting, tmp_path):
    quick = plan(painting, tmp_path / "q.pth", device="cpu", dtype="fp32", lr=0.02)
    assert quick.nearest in quick.distances and len(quick.distances) >= 2
    config = quick.config.replace(size=96, batch=2, style_size=128)
    trainer = QuickTrainer(config, quick.vgg)
    assert 1000 < trainer.trainable < 5000  # the batch norms' scale and shift, nothing else
    recipe = read_bank(quick.bank)["training"]
    assert quick.config.motion_weight == STEADIER * recipe["motion_weight"] > 0
    assert quick.config.noise_weight == STEADIER * recipe["noise_weight"] > 0
    # the conv weights and the bank's batch statistics stay as they were
    convs = {k: v.clone() for k, v in trainer.net.state_dict().items()
             if "conv.weight" in k or "running_" in k}
    x = trainer.sampler.batch(2, torch.Generator().manual_seed(5))

    def style_loss() -> float:
        trainer.gen.manual_seed(7)  # the same grain and views for both measurements
        trainer.net.eval()
        with torch.no_grad():
            return float(trainer.losses(x)["style"])

    before = style_loss()
    written = trainer.run_for(25.0)
    after = style_loss()
    assert after < 0.98 * before, (before, after)
    assert all(torch.equal(v, trainer.net.state_dict()[k]) for k, v in convs.items())
    style = load_style(written)  # a plain style file every tool loads
    assert style.arch == "unet" and style.name == "strokes"
    assert style.palette == PALETTE > 0 and style.style["thumbnail"].shape[2] == 3
    assert style.shading == SHADING > 0
    assert style.training["init_from"].endswith(f":{quick.nearest}")


def test_the_command_trains_without_data_and_says_where_it_started(painting, tmp_path):
    out = tmp_path / "strokes.pth"
    result = run_cli("train", painting, "--quick", "--minutes", "0.1", "--out", out,
                     "--device", "cpu", timeout=240)
    assert result.returncode == 0, result.stderr
    assert "starting from" in result.stdout + result.stderr
    assert load_style(out).name == "strokes"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    assert_clean_error(run_cli("train", broken, "--quick", "--out", tmp_path / "b.pth"),
                       "broken.jpg")
    assert not (tmp_path / "b.pth").exists()
    assert_clean_error(run_cli("train", painting, "--out", tmp_path / "c.pth"), "--data")
