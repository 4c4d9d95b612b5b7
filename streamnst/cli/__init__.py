"""The `streamnst` command line: one thin module per command group; rich lives here only."""

from streamnst.cli import live_cmd, offline_cmds, styles_cmds  # noqa: F401 (registers commands)
from streamnst.cli.app import cli, main

__all__ = ["cli", "main"]
