"""Run the real `streamnst` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args, timeout: float = 300, env: dict | None = None,
            **kwargs) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("COLUMNS", "120")
    return subprocess.run([sys.executable, "-m", "streamnst", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=full_env,
                          **kwargs)


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Non-zero exit, a one-line 'error:' message containing fragments, no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    text = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in text, result.stderr
