"""`train --quick`: a new painting's modulation on the bundled bank's trunk, on the frames
that ship with the package, with the real loss network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import assert_clean_error, run_cli

from streamnst.nets.checkpoint_io import load_style
from streamnst.training.quick import QuickTrainer, bundled_frames, plan


@pytest.fixture
def painting(tmp_path):
    """A painting unlike any of the bank's: bold diagonal red and blue stripes."""
    yy, xx = np.mgrid[0:160, 0:160]
    stripes = np.sin((xx + yy) / 4.0) > 0
    rgb = np.where(stripes[..., None], [200, 30, 30], [20, 40, 190]).astype(np.uint8)
    path = tmp_path / "stripes.png"
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
    convs = {k: v.clone() for k, v in trainer.net.state_dict().items() if "conv.weight" in k}
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
    assert style.arch == "unet" and style.name == "stripes"
    assert style.training["init_from"].endswith(f":{quick.nearest}")


def test_the_command_trains_without_data_and_says_where_it_started(painting, tmp_path):
    out = tmp_path / "stripes.pth"
    result = run_cli("train", painting, "--quick", "--minutes", "0.1", "--out", out,
                     "--device", "cpu", timeout=240)
    assert result.returncode == 0, result.stderr
    assert "starting from" in result.stdout + result.stderr
    assert load_style(out).name == "stripes"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    assert_clean_error(run_cli("train", broken, "--quick", "--out", tmp_path / "b.pth"),
                       "broken.jpg")
    assert not (tmp_path / "b.pth").exists()
    assert_clean_error(run_cli("train", painting, "--out", tmp_path / "c.pth"), "--data")
