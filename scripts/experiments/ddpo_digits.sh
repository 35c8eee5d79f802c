#!/usr/bin/env bash
# The recorded DDPO experiment (docs/evidence/ddpo.md): reward against number of samples on the digits for
# every reward x algorithm, RUNS seeds each, on each backend, plus ISKL with the Gaussian KL of each step
# (train.kl_estimator=gaussian) at several kl_coef, ISKL with the report's KL at two more kl_coef, and ISKL at
# the report's "bad" learning rate (3e-3), on each reward; then the summary (mean and std over seeds, tables and
# plots) in OUT.
# Every run fine-tunes the same pre-trained model (pre-trained once, with torch, if OUT has none).
#
#   scripts/experiments/ddpo_digits.sh [OUT]            # the full experiment: 5 runs, both backends, 320 samples
#   RUNS=2 BACKENDS=torch SAMPLES=160 REWARDS=compress ALGS="sf is iskl" scripts/experiments/ddpo_digits.sh
#   RUNS=5 BACKENDS=tf REWARDS=compress ALGS= BAD_LR=0 GAUSSIAN_KL=0.001 scripts/experiments/ddpo_digits.sh
#
# Runs go one after another; two processes, one per backend (BACKENDS=torch, BACKENDS=tf), can share OUT. Each
# run is resumable, so a stopped experiment picks up where it was, and a finished run (its last checkpoint
# written) is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-/tmp/ddpo-digits}"
RUNS="${RUNS:-5}"
BACKENDS="${BACKENDS:-torch tf}"
SAMPLES="${SAMPLES:-320}"             # samples per run: iterations = SAMPLES / samples_per_iteration
REWARDS="${REWARDS:-compress incompress align}"
ALGS="${ALGS-sf is iskl rwr sparse_rwr}"     # ALGS= runs none of these
BAD_LR="${BAD_LR:-1}"                 # 1: also ISKL at the report's "bad" lr 3e-3 on each reward
GAUSSIAN_KL="${GAUSSIAN_KL-0.1 0.01 0.001 0.0001}"   # also ISKL with the Gaussian step KL at these kl_coef (GAUSSIAN_KL=: none)
CHAIN_KL="${CHAIN_KL-0.01 1.0}"       # also ISKL with the report's chain KL at these kl_coef (its config has 0.1)
PRETRAIN_EPOCHS="${PRETRAIN_EPOCHS:-200}"
export DPPO_LOG_DIR="$OUT"
PY=.venv/bin/python
mkdir -p "$OUT"

# pre-trained once: a finished pre-training is not started again (so several of these scripts, one per backend,
# can share OUT without contending for the pre-training's logdir)
if [ ! -f "$OUT/ddpo/pretrain/seed0/checkpoint/state_$PRETRAIN_EPOCHS.npz" ]; then
  $PY -m dppo.cli ddpo pretrain --config configs/ddpo/pretrain_digits.yaml --backend torch --quiet \
    "pretrain.epochs=$PRETRAIN_EPOCHS"
fi

per_iteration() {  # samples per iteration of a config
  grep -E '^  samples_per_iteration:' "$1" | awk '{print $2}'
}

run() {  # config backend seed name [override ...]
  local cfg=$1 backend=$2 seed=$3 name=$4
  shift 4
  local n; n=$(per_iteration "$cfg")
  local iters=$(( SAMPLES / n ))
  local eval_every=$(( iters / 10 > 0 ? iters / 10 : 1 ))
  local logdir="$OUT/runs/$name/$backend/seed$seed"
  if [ -f "$logdir/checkpoint/state_$iters.npz" ]; then  # finished before: skip without starting a process
    return 0
  fi
  $PY -m dppo.cli ddpo train --config "$cfg" --backend "$backend" --quiet "seed=$seed" \
    "logdir=$logdir" "base=$OUT/ddpo/pretrain/seed0" \
    "train.iterations=$iters" "train.eval_every=$eval_every" "train.checkpoint_every=$iters" "$@"
}

for backend in $BACKENDS; do
  for reward in $REWARDS; do
    for alg in $ALGS; do
      for seed in $(seq 0 $((RUNS - 1))); do
        run "configs/ddpo/digits_${reward}_${alg}.yaml" "$backend" "$seed" "${reward}_${alg}"
      done
    done
    for coef in $GAUSSIAN_KL; do
      for seed in $(seq 0 $((RUNS - 1))); do
        run "configs/ddpo/digits_${reward}_iskl.yaml" "$backend" "$seed" "${reward}_iskl_gaussian_kl${coef}" \
          train.kl_estimator=gaussian "train.kl_coef=$coef"
      done
    done
    for coef in $CHAIN_KL; do
      for seed in $(seq 0 $((RUNS - 1))); do
        run "configs/ddpo/digits_${reward}_iskl.yaml" "$backend" "$seed" "${reward}_iskl_kl${coef}" "train.kl_coef=$coef"
      done
    done
    if [ "$BAD_LR" = 1 ]; then
      for seed in $(seq 0 $((RUNS - 1))); do
        run "configs/ddpo/digits_${reward}_iskl_bad_lr.yaml" "$backend" "$seed" "${reward}_iskl_bad_lr"
      done
    fi
  done
done

$PY scripts/experiments/ddpo_summary.py "$OUT/runs" "$OUT/summary"
