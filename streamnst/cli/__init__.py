"""The `streamnst` command line: one thin module per command group; rich lives here only.
The command modules are imported when their command is used (cli/app.py, COMMANDS)."""

from streamnst.cli.app import cli, main

__all__ = ["cli", "main"]
