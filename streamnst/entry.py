"""The `streamnst` command's entry point, kept free of heavy imports.

The commands import torch (seconds): a Ctrl+C meanwhile must end the process with one
word, not a traceback from deep inside an import.
"""

from __future__ import annotations

import signal
import sys


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # the same handlers cli.app.main installs again; here before the first heavy import
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from streamnst.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run()
