"""Fixtures the broadcast tests share: a real nginx-rtmp server and a demo still."""

from pathlib import Path

import nginx_rtmp
import numpy as np
import pytest

from streamnst.media.imageio import write_image


@pytest.fixture
def nginx(tmp_path):
    server = nginx_rtmp.Nginx(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def demo_still() -> np.ndarray:
    from streamnst.media.demo import resolve_media
    from streamnst.offline.metrics import read_frames

    return list(read_frames(resolve_media("demo"), 31))[30][::2, ::2].copy()  # 320x240


@pytest.fixture
def still(tmp_path, demo_still) -> Path:
    write_image(tmp_path / "still.png", demo_still)
    return tmp_path / "still.png"
