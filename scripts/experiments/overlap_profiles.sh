#!/usr/bin/env bash
# env.overlap measured (docs/evidence/benchmarks.md, "Stepping the envs beside sampling"): the DPPO hopper job's
# profile with the envs stepped in turn and overlapped, torch then TF, one run at a time (on 2 cores a second
# process would be timed too), from the shipped pre-trained policy. Writes OUT/<backend>_<overlap>.json and .txt
# (default /tmp/dppo-overlap-profiles).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-/tmp/dppo-overlap-profiles}"
mkdir -p "$OUT"
export DPPO_LOG_DIR="${DPPO_LOG_DIR:-$OUT/logs}"
for b in torch tf; do
  for overlap in false true; do
    .venv/bin/python -m dppo.cli bench --job configs/hopper/finetune_ppo_diffusion_mlp.yaml --backend "$b" \
      --iterations 2 --warmup 1 --json "$OUT/${b}_$overlap.json" "env.overlap=$overlap" \
      base_policy_path=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz | tee "$OUT/${b}_$overlap.txt"
  done
done
