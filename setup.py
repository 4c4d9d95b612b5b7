"""The build step pyproject.toml cannot say: the bundled styles (kept at the top of the
repository, in checkpoints/) travel inside the package as `streamnst/bundled/`, where
importlib.resources finds them from any install (a venv, --user, --target)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithStyles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads checkpoints/ in the checkout itself
        target = Path(self.build_lib) / "streamnst" / "bundled"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((ROOT / "checkpoints").glob("*.pth")):
            shutil.copy2(path, target / path.name)
        shutil.copy2(ROOT / "styles" / "README.md", target / "PAINTINGS.md")  # credits


setup(cmdclass={"build_py": BuildWithStyles})
