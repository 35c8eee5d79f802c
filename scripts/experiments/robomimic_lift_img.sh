#!/usr/bin/env bash
# The recorded pixel run (docs/evidence/robomimic.md, "Pixels: Lift from the camera"): upstream's Lift image configs
# (pre_diffusion_mlp_img, eval/can/eval_diffusion_mlp_img with env_name=lift, ft_ppo_diffusion_mlp_img). Overrides:
# lengths, the demo count (upstream's train_dataset.max_n_episodes) and the EMA schedule (stated in the docs).
#   data      the 50 Lift image demos (data/robomimic/lift-img; also made on first use by the configs' paths);
#   pretrain  pre-train on torch on the first DEMOS demos for PRE_EPOCHS epochs, a checkpoint every SAVE_EVERY;
#             EMA_START/EMA_EVERY: upstream's epoch_start_ema/update_ema_freq (20/10; here the EMA copies the
#             network every epoch: epochs before epoch_start_ema reset it, and the run ends before 100000);
#             WARMUP: the lr warm-up in epochs (upstream's 100 is 4% of its 2500 epochs);
#   sweep     success of the checkpoints EVAL_EPOCHS over SWEEP_EPISODES episodes (torch), to pick START;
#   eval      success of the checkpoint at epoch START over EPISODES episodes on each backend, in runs of CHUNK
#             episodes (one camera env worker per episode; run k resets env i with seed 10000 + k*CHUNK + i, so
#             the episodes face the scenes of seeds 10000..10000+EPISODES-1 whatever CHUNK is);
#   finetune  DPPO (ft_ppo_diffusion_mlp_img, sparse reward) from START on each backend: N_ENVS envs x N_STEPS
#             policy steps x ITERS iterations, minibatch BATCH; then its last checkpoint over EPISODES episodes.
#
#   scripts/experiments/robomimic_lift_img.sh [OUT]   (an evaluation part whose json exists is not run again)
#   STAGES="sweep" EVAL_EPOCHS="100 200" scripts/experiments/robomimic_lift_img.sh /work/exp/pixrun
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-runs/robomimic_lift_img}"
STAGES="${STAGES:-data pretrain sweep eval finetune}"
BACKENDS="${BACKENDS:-torch tf}"
DEMOS="${DEMOS:-50}"
PRE_EPOCHS="${PRE_EPOCHS:-150}"
SAVE_EVERY="${SAVE_EVERY:-25}"
EMA_START="${EMA_START:-100000}"
EMA_EVERY="${EMA_EVERY:-1}"
WARMUP="${WARMUP:-10}"                # lr warm-up epochs (upstream 100; its scheduler steps once an epoch)
EVAL_EPOCHS="${EVAL_EPOCHS:-50 100 125 150}"
SWEEP_EPISODES="${SWEEP_EPISODES:-10}"
START="${START:-125}"
EPISODES="${EPISODES:-50}"
CHUNK="${CHUNK:-10}"                  # a camera env worker holds about 0.9 GB
N_ENVS="${N_ENVS:-5}"
N_STEPS="${N_STEPS:-75}"               # policy steps per iteration: one 300-step episode per env
ITERS="${ITERS:-5}"
BATCH="${BATCH:-25}"                   # 15 minibatches of the 375 rows an epoch: grad_accumulate 15 steps once
                                       # (75 gave 5 and no step at all: docs/evidence/robomimic.md section 6)
source scripts/experiments/robomimic_setup.sh
ckpt() { echo "$OUT/pre_img_d$DEMOS/checkpoint/state_$1.npz"; }
evaluate() {  # backend checkpoint episodes name: runs of CHUNK episodes, one json each
  local k=0
  while (( k * CHUNK < $3 )); do
    local n=$(( $3 - k * CHUNK < CHUNK ? $3 - k * CHUNK : CHUNK ))
    if [[ -f "$OUT/$4_$1_$k.json" ]]; then k=$(( k + 1 )); continue; fi  # this run's part is done: resumable
    /usr/bin/time -f "eval $4 $1 part $k wall %e s" $DPPO eval --backend "$1" \
      --config "$CFG/eval/can/eval_diffusion_mlp_img.yaml" --episodes "$n" --seed $(( 10000 + k * CHUNK )) \
      --json "$OUT/$4_$1_$k.json" env_name=lift "base_policy_path=$2"
    k=$(( k + 1 ))
  done
}

if has data; then
  [[ -f data/robomimic/lift-img/train.npz ]] || $DPPO data robomimic --task lift --images --demos 50 --seed 0 \
    --out data/robomimic/lift-img
fi
if has pretrain; then
  /usr/bin/time -f "pretrain demos=$DEMOS wall %e s" $DPPO pretrain --backend torch --quiet \
    --config "$CFG/pretrain/lift/pre_diffusion_mlp_img.yaml" "train.n_epochs=$PRE_EPOCHS" \
    "train.save_model_freq=$SAVE_EVERY" "train_dataset.max_n_episodes=$DEMOS" "train.epoch_start_ema=$EMA_START" \
    "train.update_ema_freq=$EMA_EVERY" "train.lr_scheduler.warmup_steps=$WARMUP" "logdir=$OUT/pre_img_d$DEMOS" wandb=null
fi
if has sweep; then
  for e in $EVAL_EPOCHS; do
    evaluate torch "$(ckpt "$e")" "$SWEEP_EPISODES" "sweep_e$e"
  done
fi
if has eval; then
  for b in $BACKENDS; do
    evaluate "$b" "$(ckpt "$START")" "$EPISODES" "eval_start_e$START"
  done
fi
if has finetune; then
  for b in $BACKENDS; do
    # a finished fine-tuning run (its last checkpoint written) is not run again: only its evaluation
    [[ -f "$OUT/ft_img_$b/checkpoint/state_$(( ITERS - 1 )).npz" ]] || \
    /usr/bin/time -f "finetune $b wall %e s" $DPPO finetune --backend "$b" --quiet \
      --config "$CFG/finetune/lift/ft_ppo_diffusion_mlp_img.yaml" "base_policy_path=$(ckpt "$START")" \
      "logdir=$OUT/ft_img_$b" wandb=null "env.n_envs=$N_ENVS" "train.n_steps=$N_STEPS" \
      "train.n_train_itr=$ITERS" "train.batch_size=$BATCH" "train.save_model_freq=$ITERS"
    # iterations run 0..ITERS-1: the last checkpoint is state_<ITERS-1>
    evaluate "$b" "$OUT/ft_img_$b/checkpoint/state_$(( ITERS - 1 )).npz" "$EPISODES" "eval_ft"
  done
fi
