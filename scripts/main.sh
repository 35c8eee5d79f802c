#!/usr/bin/env bash
# README command 1: set up, then run the main job on the shipped hopper config.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
exec .venv/bin/dppo parity --config configs/hopper/pretrain_diffusion_mlp.yaml --json runs/parity_hopper.json "$@"
