"""A built wheel works on its own: installed into a fresh virtual environment, or with
`pip install --target`, run from outside the repository, it finds its bundled styles and
its demo clip (slow: the venv installs torch, a few minutes)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _wheel(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(ROOT), "-w", str(dist)], check=True,
                   timeout=300)
    return next(dist.glob("streamnst-*.whl"))


def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.mark.slow
def test_a_target_install_stylises_the_demo_with_its_default_style(tmp_path):
    """`pip install --target DIR` (no venv, no prefix): the styles ship inside the package,
    so the default style is found wherever the package lands."""
    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(_wheel(tmp_path))], check=True, timeout=300)
    assert (target / "streamnst" / "bundled" / "starry_night.pth").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "STREAMNST_HOME"}
    env.update(PYTHONPATH=str(target), STREAMNST_HOME=str(tmp_path / "home"))
    where = subprocess.run([sys.executable, "-c", "import streamnst; print(streamnst.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(target)), where.stdout  # not the checkout's copy
    run = subprocess.run([sys.executable, "-m", "streamnst", "stylize", "demo", "out.mp4",
                          "--max-frames", "3"], cwd=work, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "starry_night" in run.stderr and _frames(work / "out.mp4") == 3


@pytest.fixture
def venv(tmp_path):
    """A folder for a virtual environment, removed afterwards: with torch's default build
    it holds 6 GB, and pytest keeps its last three temporary folders."""
    path = tmp_path / "venv"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_has_its_styles_and_demo(tmp_path, venv):
    wheel = _wheel(tmp_path)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # nothing from the caller's PYTHONPATH: pip would take a checkout on it for an installed
    # streamnst and skip the wheel
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMNST_HOME")}
    env.update(STREAMNST_HOME=str(tmp_path / "home"), COLUMNS="200")
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   timeout=1200, env=env)
    work = tmp_path / "elsewhere"  # not the repository: nothing can come from the checkout
    work.mkdir()
    exe = venv / "bin" / "streamnst"
    styles = subprocess.run([str(exe), "styles"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=300)
    assert styles.returncode == 0, styles.stderr
    assert "starry_night" in styles.stdout and "bundled" in styles.stdout, styles.stdout
    out = subprocess.run([str(exe), "stylize", "demo", "out.mp4", "--max-frames", "5"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert _frames(work / "out.mp4") == 5
    where = subprocess.run([str(python), "-c", "import streamnst, sys; print(streamnst.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout
    # what `train --quick` needs without --data: the bank and the frames, in the package
    quick = subprocess.run([str(python), "-c", "from streamnst.training.quick import "
                            "bundled_frames, default_bank; print(default_bank().is_file(), "
                            "len(list(bundled_frames().glob('*.jpg'))))"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert quick.stdout.split() == ["True", "50"], quick.stdout + quick.stderr
