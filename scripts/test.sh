#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (unit, CLI, golden and parity; ruff first).
# Tests run in one pytest-xdist worker per core (-n auto), each file in one worker (its module fixtures are
# built once), each worker on one thread: two processes each asking for every core slow a 2-core machine
# down many times over. Files go out longest first (conftest.py, tests/file_seconds.json), not xdist's
# most-tests-first order, which started long files of few tests last. Arguments go to pytest (e.g. -n 0 for
# one process, or a test path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-1}" \
       TF_NUM_INTEROP_THREADS="${TF_NUM_INTEROP_THREADS:-1}" DPPO_TORCH_UPDATE_THREADS="${DPPO_TORCH_UPDATE_THREADS:-1}"
exec .venv/bin/python -m pytest -q -n auto --dist loadfile --no-loadscope-reorder "$@"
