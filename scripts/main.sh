#!/usr/bin/env bash
# README command 1: set up, then run the main job on the shipped Hopper data:
# pre-train, evaluate, fine-tune with DPPO, evaluate again, table + runs/main/reward_curve.png.
# Arguments go to `dppo main` (e.g. --backend both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dppo main "$@"
