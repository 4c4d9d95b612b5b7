"""`streamnst --help` answers without importing torch (issue 54: it took 6-7 s), and the
list it prints is the list of commands there are."""

from __future__ import annotations

import importlib
import subprocess
import sys

from streamnst.cli.app import COMMANDS, cli


def test_the_top_help_imports_no_command_and_no_torch():
    code = ("import sys\nfrom streamnst.cli import main\nsys.argv = ['streamnst', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'streamnst.cli.offline_cmds' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False False"
    for name in COMMANDS:
        assert f"  {name} " in r.stdout


def test_every_command_is_listed_and_each_listed_one_exists():
    for module in {m for m, _ in COMMANDS.values()}:
        importlib.import_module(f"streamnst.cli.{module}")
    assert set(cli.commands) == set(COMMANDS)
    for name, (module, line) in COMMANDS.items():
        command = cli.commands[name]
        assert command.callback.__module__ == f"streamnst.cli.{module}"
        assert len(line) < 70 and line.split()[0] in command.help  # its own first word
