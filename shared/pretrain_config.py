"""Schema of a pre-training config (upstream DPPO's key names)."""

from __future__ import annotations

from typing import Any

from shared.config_schema import ANY_MAPPING, Field, Schema, positive, validate
from shared.errors import ConfigError

_INT, _FLOAT, _STR, _BOOL = Field(int), Field(float), Field(str), Field(bool)


def _opt(kind: type | tuple[type, ...], nullable: bool = True) -> Field:
    return Field(kind, required=False, nullable=nullable)


NETWORK: Schema = {
    "action_dim": _INT, "horizon_steps": _INT, "cond_dim": _INT, "time_dim": _opt(int, False),
    "mlp_dims": _opt(list, False), "cond_mlp_dims": _opt(list), "activation_type": _opt(str, False),
    "out_activation_type": _opt(str, False), "use_layernorm": _opt(bool, False),
    "residual_style": _opt(bool, False), "dropout": _opt(float, False), "_target_": _opt(str),
}

MODEL: Schema = {
    "network": NETWORK, "horizon_steps": _INT, "obs_dim": _INT, "action_dim": _INT, "denoising_steps": _INT,
    "cond_steps": _opt(int, False), "predict_epsilon": _opt(bool, False), "denoised_clip_value": _opt(float),
    "eps_clip_value": _opt(float),
    "randn_clip_value": _opt(float, False), "final_action_clip_value": _opt(float), "use_ddim": _opt(bool, False),
    "ddim_steps": _opt(int), "network_path": _opt(str), "device": _opt(str), "_target_": _opt(str),
}

PRETRAIN: Schema = {
    "name": _opt(str, False), "logdir": _STR, "train_dataset_path": _STR, "normalization_path": _opt(str),
    "resume": _opt(str), "seed": _INT, "env": _opt(str, False), "device": _opt(str),
    "obs_dim": _INT, "action_dim": _INT, "denoising_steps": _INT, "horizon_steps": _INT, "cond_steps": _INT,
    "wandb": ANY_MAPPING, "train_dataset": ANY_MAPPING,
    "train": {
        "n_epochs": _INT, "batch_size": _INT, "learning_rate": _FLOAT, "weight_decay": _FLOAT,
        "lr_scheduler": {"first_cycle_steps": _INT, "warmup_steps": _opt(int, False), "min_lr": _opt(float, False),
                         "cycle_mult": _opt(float, False), "gamma": _opt(float, False)},
        "epoch_start_ema": _INT, "update_ema_freq": _INT, "save_model_freq": _INT,
        "max_grad_norm": _opt(float), "max_n_episodes": _opt(int), "log_freq": _opt(int, False),
    },
    "model": MODEL,
    "ema": {"decay": _FLOAT},
}


def validate_pretrain_config(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = validate(cfg, PRETRAIN)
    positive(cfg, "train.n_epochs", "train.batch_size", "train.learning_rate", "train.update_ema_freq",
             "train.save_model_freq", "train.lr_scheduler.first_cycle_steps", "obs_dim", "action_dim",
             "denoising_steps", "horizon_steps", "cond_steps", "train.max_grad_norm", "train.max_n_episodes")
    if not 0.0 <= cfg["ema"]["decay"] <= 1.0:
        raise ConfigError(f"config key 'ema.decay' must be in [0, 1], got {cfg['ema']['decay']!r}")
    if cfg["train"]["weight_decay"] < 0:
        raise ConfigError(f"config key 'train.weight_decay' must be >= 0, got {cfg['train']['weight_decay']!r}")
    return cfg
