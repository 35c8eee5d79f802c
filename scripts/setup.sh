#!/usr/bin/env bash
# Create .venv and install the project into it (idempotent; re-runs when pyproject.toml changes).
# torch==2.13.0 goes first: it is the CPU build on this machine, and the project's range accepts it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.dppo-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.13.0"
    # robosuite 1.4.1 (upstream DPPO's, for the robomimic tasks) without its declared dependencies: pip would
    # otherwise be free to pick another MuJoCo; its real ones are the [robomimic] extra
    .venv/bin/python -m pip install -q --no-deps "robosuite==1.4.1"
    .venv/bin/python -m pip install -q -e ".[dev,robomimic,ray]"
    echo "$want" > "$stamp"
fi
bash scripts/install_serving_api.sh .venv/bin/python
