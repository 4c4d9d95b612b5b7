#!/usr/bin/env bash
# Install streamnst with its test extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
python3 -m ruff check streamnst tests tools
python3 -m pytest -q
