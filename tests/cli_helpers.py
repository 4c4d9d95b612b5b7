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


def free_port() -> int:
    """A TCP port free on loopback right now. A fixed or pid-derived number can sit in the
    ephemeral range and be taken by any outgoing connection of a long test run."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(port: int, seconds: float = 60.0) -> bool:
    """True once GET /api/state on 127.0.0.1:port answers 200."""
    import http.client
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/state")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_until(condition, seconds: float, step: float = 0.05) -> bool:
    """Poll `condition()` until it is true (True) or `seconds` pass (False)."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def port_open(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:port."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False
