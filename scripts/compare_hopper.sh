#!/usr/bin/env bash
# The recorded comparison (docs/evidence/experiments.md) (`dppo compare`): fine-tuning algorithms on Hopper-v5
# (hopper-medium-v2's normalization), both backends, each diffusion policy starting from the shipped
# pre-trained checkpoint, one common budget, final policies evaluated over 10 episodes.
# Outputs: runs/compare/compare.png, results.md, results.json; runs in runs/compare/<config>/<backend>/seed<k>/
# (rerunning reuses finished runs and resumes unfinished ones).
#
# Budget (environment variables): ITR iterations (iteration 0 and every VAL-th evaluate, the others
# train), ENVS envs, STEPS policy steps of 4-action chunks per iteration; the Gaussian policy acts one
# action per step, so it gets 4 x STEPS steps: every algorithm sees the same environment steps per
# training iteration. Arguments go to `dppo compare` after the script's: key=value overrides (later
# ones win, e.g. a tiny trial: train.n_train_itr=2 env.n_envs=2 train.n_steps=5), then options
# such as --seeds 0 1 2 or --eval-episodes N. ONLY="ft_dql_diffusion_mlp ft_qsm_diffusion_mlp" runs just
# those configs (with their overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

ITR=${ITR:-7}
VAL=${VAL:-2}
ENVS=${ENVS:-8}
STEPS=${STEPS:-250}
SHIPPED=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz
UPSTREAM=tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2

CONFIGS=(
    --config configs/hopper/finetune_ppo_diffusion_mlp.yaml   # DPPO
    --config configs/hopper/ppo_gaussian_mlp.yaml             # Gaussian PPO, from scratch (upstream's baseline)
    --config "$UPSTREAM/ft_rwr_diffusion_mlp.yaml"            # RWR, upstream's config
    --config "$UPSTREAM/ft_awr_diffusion_mlp.yaml"            # AWR, upstream's config
    --config configs/hopper/ft_dipo_diffusion_mlp.yaml        # DIPO, upstream's values
    --config configs/hopper/ft_dql_diffusion_mlp.yaml         # DQL, upstream's values
    --config configs/hopper/ft_idql_diffusion_mlp.yaml        # IDQL, upstream's values
    --config configs/hopper/ft_qsm_diffusion_mlp.yaml         # QSM, upstream's values
)

BUDGET=(
    "train.n_train_itr=$ITR" "train.val_freq=$VAL" "env.n_envs=$ENVS" "train.n_steps=$STEPS"
    "train.save_model_freq=$VAL" normalization_path=data/hopper-medium-v2/normalization.npz wandb=null
    "ppo_gaussian_mlp:train.n_steps=$((4 * STEPS))"
    # the diffusion policies start from the shipped pre-trained checkpoint
    "finetune_ppo_diffusion_mlp:base_policy_path=$SHIPPED"
    "ft_rwr_diffusion_mlp:base_policy_path=$SHIPPED"
    "ft_awr_diffusion_mlp:base_policy_path=$SHIPPED"
    # Every replay baseline keeps upstream's replay_ratio, batch size and critic-only warm-up (n_critic_warmup_itr 5:
    # iterations 1 and 3 train the critics only, iteration 5 the actor too). WARMUP=N cuts it to N for all four
    # (the earlier recording used 2: iteration 1 critics only).
)
if [[ -n "${WARMUP:-}" ]]; then
    for name in ft_dipo_diffusion_mlp ft_dql_diffusion_mlp ft_idql_diffusion_mlp ft_qsm_diffusion_mlp; do
        BUDGET+=("$name:train.n_critic_warmup_itr=$WARMUP")
    done
fi

if [[ -n "${ONLY:-}" ]]; then  # ONLY="name ...": just those configs (file names without .yaml) and their overrides
    picked() { local n; for n in $ONLY; do [[ $1 == */$n.yaml || $1 == "$n:"* ]] && return 0; done; return 1; }
    KEPT=()
    for ((i = 1; i < ${#CONFIGS[@]}; i += 2)); do picked "${CONFIGS[i]}" && KEPT+=(--config "${CONFIGS[i]}"); done
    CONFIGS=("${KEPT[@]}")
    KEPT=()
    for item in "${BUDGET[@]}"; do
        [[ ${item%%=*} == *:* ]] && ! picked "$item" && continue
        KEPT+=("$item")
    done
    BUDGET=("${KEPT[@]}")
fi

exec .venv/bin/python -m dppo.cli compare "${CONFIGS[@]}" --backend both --out "${OUT:-runs/compare}" \
    --eval-episodes 10 "${BUDGET[@]}" "$@"
