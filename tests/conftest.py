from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from streamnst.nets import UNet  # noqa: E402
from streamnst.nets.checkpoint_io import save_style  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's own styles and caches."""
    home = tmp_path_factory.mktemp("streamnst_home")
    monkeypatch.setenv("STREAMNST_HOME", str(home))
    torch.manual_seed(0)


@pytest.fixture
def tiny_style(tmp_path) -> Path:
    """A small random U-Net saved as a real style checkpoint."""
    net = tinted_unet((1.5, -1.0, 0.5))
    with torch.no_grad():  # move BN stats off their defaults so folding is exercised
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return save_style(tmp_path / "tiny.pth", net, "unet",
                      style={"name": "tiny", "image": "none.jpg"}, training={"steps": 0})


def tinted_unet(tint: tuple[float, float, float], width: int = 4) -> UNet:
    """A small random U-Net whose output is visibly tinted: the network starts near the
    identity, so a bias on its last conv makes styles easy to tell apart in tests."""
    net = UNet(width=width, res_convs=2, head="identity", ends="full").eval()
    with torch.no_grad():
        net.out.bias.copy_(torch.tensor(tint))
    return net


def style_with(tmp_path: Path, **stored) -> Path:
    """A small tinted style saved with `stored` in its style metadata (a stored shading or
    canvas amount, say), for tests of how a style's own settings are read."""
    return save_style(tmp_path / "stored.pth", tinted_unet((1.0, -1.0, 0.5)), "unet",
                      style={"name": "stored", **stored})


def random_bank(styles: int = 3):
    """A small style bank whose every style has its own random batch-norm rows (none at the
    defaults), so the styles paint visibly differently."""
    from streamnst.nets.conditional import StyleBank

    torch.manual_seed(0)
    bank = StyleBank(styles, width=4, res_convs=2, head="plain", ends="shuffle")
    with torch.no_grad():
        for bn in bank.norms.values():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)
    return bank.eval()


# the broadcast tests (live/test_broadcast.py, live/test_whip.py)
@pytest.fixture
def nginx(tmp_path):
    import nginx_rtmp

    server = nginx_rtmp.Nginx(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def demo_still():
    from streamnst.media.demo import resolve_media
    from streamnst.offline.metrics import read_frames

    return list(read_frames(resolve_media("demo"), 31))[30][::2, ::2].copy()  # 320x240


@pytest.fixture
def still(tmp_path, demo_still) -> Path:
    from streamnst.media.imageio import write_image

    write_image(tmp_path / "still.png", demo_still)
    return tmp_path / "still.png"
