#!/usr/bin/env bash
# The recorded robomimic experiment (docs/evidence/robomimic.md): upstream's Lift configs; overrides are lengths,
# the demo count (upstream's train_dataset.max_n_episodes) and the fine-tuning minibatch (stated in the docs).
#   pretrain  pre-train POLICIES (diffusion_mlp gaussian_mlp gmm_mlp) on the first DEMOS shipped scripted demos
#             (data/robomimic/lift), PRE_EPOCHS epochs (upstream's fine-tuning starts from epoch 5000);
#   sweep     success of the diffusion policy's checkpoints (EVAL_EPOCHS) over SWEEP_EPISODES episodes, for
#             each demo count in SWEEP_DEMOS (how the start was chosen: roughly 20-70% success);
#   finetune  fine-tune each policy with its upstream ft_ppo_*.yaml (sparse reward) on each backend:
#             N_ENVS envs x N_STEPS policy steps x ITERS iterations, minibatch BATCH;
#   eval      success over EPISODES episodes (deterministic, env i reset with seed 10000+i) of each start
#             checkpoint and of each fine-tuned one, on each backend.
#
#   scripts/experiments/robomimic_lift.sh [OUT]
#   STAGES="pretrain" POLICIES=gaussian_mlp scripts/experiments/robomimic_lift.sh    # one stage, one policy
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-runs/robomimic_lift}"
STAGES="${STAGES:-pretrain finetune eval}"
BACKENDS="${BACKENDS:-torch tf}"
POLICIES="${POLICIES:-diffusion_mlp gaussian_mlp gmm_mlp}"
DEMOS="${DEMOS:-20}"
PRE_EPOCHS="${PRE_EPOCHS:-5000}"
SWEEP_DEMOS="${SWEEP_DEMOS:-10 20 40}"
EVAL_EPOCHS="${EVAL_EPOCHS:-3000 5000}"
SWEEP_EPISODES="${SWEEP_EPISODES:-20}"
N_ENVS="${N_ENVS:-10}"
N_STEPS="${N_STEPS:-75}"               # policy steps per iteration: one 300-step episode per env
ITERS="${ITERS:-20}"                  # the recorded table: 20 on both backends; ITERS=30 BACKENDS=torch for its last row
BATCH="${BATCH:-750}"                  # 10 minibatches per iteration (upstream: 20 of 7500)
EPISODES="${EPISODES:-100}"
source scripts/experiments/robomimic_setup.sh
start() { echo "$OUT/pre_$1_d$DEMOS/checkpoint/state_$PRE_EPOCHS.npz"; }
pretrain() {  # policy demos epochs save_every logdir
  /usr/bin/time -f "pretrain $1 demos=$2 wall %e s" $DPPO pretrain --backend torch --quiet \
    --config "$CFG/pretrain/lift/pre_$1.yaml" "train.n_epochs=$3" "train.save_model_freq=$4" \
    "train_dataset.max_n_episodes=$2" "logdir=$5" wandb=null
}
# an eval config per policy: upstream ships none for Lift; the diffusion one is upstream's Can eval config with
# Lift's env; Gaussian and GMM policies are evaluated through their fine-tuning configs (dppo eval reads both;
# it evaluates a fine-tuned Gaussian checkpoint only through its fine-tuning config)
eval_cfg() {
  case $1 in
    diffusion_mlp) echo "configs/robomimic/lift/eval_$1.yaml" ;;
    *) echo "$CFG/finetune/lift/ft_ppo_$1.yaml" ;;
  esac
}
evaluate() {  # policy backend checkpoint episodes json
  $DPPO eval --backend "$2" --config "$(eval_cfg "$1")" --episodes "$4" --json "$5" "base_policy_path=$3"
}

if has sweep; then
  for d in $SWEEP_DEMOS; do
    pretrain diffusion_mlp "$d" "$PRE_EPOCHS" 1000 "$OUT/pre_diffusion_mlp_d$d"
    for e in $EVAL_EPOCHS; do
      evaluate diffusion_mlp torch "$OUT/pre_diffusion_mlp_d$d/checkpoint/state_$e.npz" "$SWEEP_EPISODES" \
        "$OUT/sweep_d${d}_e$e.json"
    done
  done
fi
if has pretrain; then
  for p in $POLICIES; do
    [[ -f "$(start "$p")" ]] || pretrain "$p" "$DEMOS" "$PRE_EPOCHS" 1000 "$OUT/pre_${p}_d$DEMOS"
  done
fi
if has finetune; then
  for p in $POLICIES; do
    for b in $BACKENDS; do
      /usr/bin/time -f "finetune $p $b wall %e s" $DPPO finetune --backend "$b" --quiet \
        --config "$CFG/finetune/lift/ft_ppo_$p.yaml" "base_policy_path=$(start "$p")" \
        "logdir=$OUT/ft_${p}_$b" wandb=null "env.n_envs=$N_ENVS" "train.n_steps=$N_STEPS" \
        "train.n_train_itr=$ITERS" "train.batch_size=$BATCH" "train.save_model_freq=10"
    done
  done
fi
if has eval; then
  for p in $POLICIES; do
    for b in $BACKENDS; do
      evaluate "$p" "$b" "$(start "$p")" "$EPISODES" "$OUT/eval_start_${p}_$b.json"
      last=$(ls "$OUT/ft_${p}_$b/checkpoint" | sed -E 's/state_([0-9]+)\.npz/\1/' | sort -n | tail -1)
      evaluate "$p" "$b" "$OUT/ft_${p}_$b/checkpoint/state_$last.npz" "$EPISODES" "$OUT/eval_ft_${p}_$b.json"
    done
  done
fi
