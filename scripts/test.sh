#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (unit, CLI and parity; ruff first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
