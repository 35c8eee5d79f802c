#!/usr/bin/env bash
# The recorded robomimic experiment (docs/evidence/robomimic.md): upstream's Lift configs, length overrides only.
#   1. pre-train pre_diffusion_mlp.yaml on the shipped scripted demos (data/robomimic/lift), a checkpoint every
#      SAVE_EVERY epochs;
#   2. evaluate the checkpoints of EVAL_EPOCHS with configs/robomimic/lift/eval_diffusion_mlp.yaml (upstream's
#      eval config with Lift's env) over SWEEP_EPISODES episodes each, to choose where to start from
#      (a policy with room to improve: roughly 20-70% success);
#   3. fine-tune ft_ppo_diffusion_mlp.yaml (sparse reward) from START_EPOCH's checkpoint on each backend with
#      N_ENVS envs x N_STEPS policy steps x ITERS iterations;
#   4. evaluate START_EPOCH's checkpoint and each fine-tuned one over EPISODES episodes on each backend.
#
#   scripts/experiments/robomimic_lift.sh [OUT]
#   STAGES="pretrain sweep" scripts/experiments/robomimic_lift.sh    # only the first stages
#
# Jobs run one after another, niced, one thread each (2 shared cores: a second process slows both).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-runs/robomimic_lift}"
STAGES="${STAGES:-pretrain sweep finetune eval}"
BACKENDS="${BACKENDS:-torch tf}"
PRE_EPOCHS="${PRE_EPOCHS:-2000}"
SAVE_EVERY="${SAVE_EVERY:-50}"
EVAL_EPOCHS="${EVAL_EPOCHS:-50 200 300 500 700 1000 1500 2000}"
SWEEP_EPISODES="${SWEEP_EPISODES:-20}"
START_EPOCH="${START_EPOCH:-1000}"  # the first epoch in the 20-70% band (docs/evidence/robomimic.md)
N_ENVS="${N_ENVS:-10}"
N_STEPS="${N_STEPS:-75}"               # policy steps per iteration: one 300-step episode per env
ITERS="${ITERS:-20}"
EPISODES="${EPISODES:-100}"
export DPPO_DATA_DIR="$PWD/data" DPPO_LOG_DIR="$PWD/$OUT" OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 \
  TF_NUM_INTEROP_THREADS=1
CFG=tests/fixtures/upstream_cfg/cfg/robomimic
EVAL_CFG=configs/robomimic/lift/eval_diffusion_mlp.yaml
DPPO="nice .venv/bin/dppo"
mkdir -p "$OUT"
has() { [[ " $STAGES " == *" $1 "* ]]; }
ckpt() { echo "$OUT/pre_torch/checkpoint/state_$1.npz"; }

if has pretrain; then
  /usr/bin/time -f "pretrain wall %e s" $DPPO pretrain --backend torch --quiet \
    --config "$CFG/pretrain/lift/pre_diffusion_mlp.yaml" "train.n_epochs=$PRE_EPOCHS" \
    "train.save_model_freq=$SAVE_EVERY" "logdir=$PWD/$OUT/pre_torch" wandb=null
fi
if has sweep; then
  for e in $EVAL_EPOCHS; do
    $DPPO eval --backend torch --config "$EVAL_CFG" --episodes "$SWEEP_EPISODES" \
      --json "$OUT/eval_pre${e}_torch.json" "base_policy_path=$(ckpt "$e")"
  done
fi
if has finetune; then
  for b in $BACKENDS; do
    /usr/bin/time -f "finetune $b wall %e s" $DPPO finetune --backend "$b" --quiet \
      --config "$CFG/finetune/lift/ft_ppo_diffusion_mlp.yaml" "base_policy_path=$(ckpt "$START_EPOCH")" \
      "logdir=$PWD/$OUT/ft_$b" wandb=null "env.n_envs=$N_ENVS" "train.n_steps=$N_STEPS" \
      "train.n_train_itr=$ITERS"
  done
fi
if has eval; then
  for b in $BACKENDS; do
    $DPPO eval --backend "$b" --config "$EVAL_CFG" --episodes "$EPISODES" \
      --json "$OUT/eval_start_${b}.json" "base_policy_path=$(ckpt "$START_EPOCH")"
    last=$(ls "$OUT/ft_$b/checkpoint" | sed -E 's/state_([0-9]+)\.npz/\1/' | sort -n | tail -1)
    $DPPO eval --backend "$b" --config "$EVAL_CFG" --episodes "$EPISODES" \
      --json "$OUT/eval_ft_${b}.json" "base_policy_path=$OUT/ft_$b/checkpoint/state_$last.npz"
  done
fi
