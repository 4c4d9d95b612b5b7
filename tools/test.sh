#!/usr/bin/env bash
# Install streamnst with its test extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev]"
# the WHIP tests' server (Eyevinn's WHIP endpoint, from npm, pinned by its lock file)
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/whip_server --no-audit --no-fund --loglevel=error ||
    echo "warning: npm ci failed: the WHIP tests will skip (they need tests/whip_server)"
fi
python3 -m ruff check streamnst tests tools
python3 -m pytest -q
