#!/usr/bin/env bash
# The recorded experiment (docs/evidence/experiments.md): the main job with upstream's Hopper DPPO fine-tuning
# hyperparameters (configs/hopper/experiment_job.yaml), both backends, 50 evaluation episodes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dppo main --config configs/hopper/experiment_job.yaml --workdir runs/experiment --backend both "$@"
