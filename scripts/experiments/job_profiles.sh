#!/usr/bin/env bash
# The end-to-end profiles recorded in docs/evidence/benchmarks.md ("End to end"), one at a time (on 2 cores a
# second process would be timed too). Writes OUT/<algo>_<backend>.json (default /tmp/dppo-job-profiles).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-/tmp/dppo-job-profiles}"
mkdir -p "$OUT"
export DPPO_LOG_DIR="${DPPO_LOG_DIR:-$OUT/logs}"
U=tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2
for b in torch tf; do
  .venv/bin/python -m dppo.cli bench --job configs/hopper/finetune_ppo_diffusion_mlp.yaml --backend "$b" --iterations 2 --warmup 1 --json "$OUT/dppo_$b.json"
  # SAC updates once its buffer holds a minibatch (256): 260 warm-up iterations
  .venv/bin/python -m dppo.cli bench --job "$U/sac_mlp.yaml" --backend "$b" --iterations 300 --warmup 260 --json "$OUT/sac_$b.json" train.n_explore_steps=0 wandb=null
  .venv/bin/python -m dppo.cli bench --job "$U/rlpd_mlp.yaml" --backend "$b" --iterations 20 --warmup 2 --json "$OUT/rlpd_$b.json" train.n_explore_steps=0 wandb=null
  .venv/bin/python -m dppo.cli bench --job "$U/ibrl_mlp.yaml" --backend "$b" --iterations 60 --warmup 4 --json "$OUT/ibrl_$b.json" wandb=null
  .venv/bin/python -m dppo.cli bench --job "$U/calql_mlp_online.yaml" --backend "$b" --iterations 2 --warmup 1 --json "$OUT/calql_$b.json" base_policy_path=null env.max_episode_steps=200 train.val_freq=100 wandb=null
done
