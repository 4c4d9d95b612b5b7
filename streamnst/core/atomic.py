"""Write-then-rename, so a half-written file never replaces a good one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    `target` is left as it was. The temporary name keeps the target's extension so
    that writers choosing a format by extension (PyAV, OpenCV) still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    ext = suffix if suffix is not None else target.suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{ext}",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file 0600; the result gets what open() would give (0666 & ~umask)
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_umask() -> int:
    # reading the umask means setting it: done once, at import, before any writer thread
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def remove_partials(target: str | os.PathLike) -> None:
    """Delete temporary files a killed writer of `target` left (SIGKILL skips cleanup)."""
    target = Path(target)
    for tmp in target.parent.glob(f".{target.stem}.*.partial{target.suffix}"):
        tmp.unlink(missing_ok=True)
