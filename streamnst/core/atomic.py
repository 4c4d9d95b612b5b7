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


def check_writable(target: str | os.PathLike) -> None:
    """OutputError naming `target` unless a file can be written beside it now (its folder
    made if missing): say it before an hour of work, not after."""
    from streamnst.core.errors import OutputError

    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".probe",
                                     dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write {target} ({exc.strerror or exc}); choose another "
                          "--out") from None
    if target.is_dir():
        raise OutputError(f"{target} is a folder; give --out a file name")
