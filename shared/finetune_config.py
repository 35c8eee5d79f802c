"""Schema and typed view of a PPO fine-tuning config (upstream's ft_ppo_* key names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config_schema import ANY_MAPPING, Field, Schema, positive, validate
from shared.errors import ConfigError
from shared.eta import EtaConfig, eta_config
from shared.lr_schedule import CosineWarmupRestarts
from shared.lr_schedule import from_config as lr_from_config
from shared.pretrain_config import NETWORK

_INT, _FLOAT, _STR = Field(int), Field(float), Field(str)


def _opt(kind: type | tuple[type, ...], nullable: bool = True) -> Field:
    return Field(kind, required=False, nullable=nullable)


_SCHEDULER: Schema = {"first_cycle_steps": _INT, "warmup_steps": _opt(int, False), "min_lr": _opt(float, False),
                      "cycle_mult": _opt(float, False), "gamma": _opt(float, False)}

GAUSSIAN_ACTOR: Schema = {
    "action_dim": _INT, "horizon_steps": _INT, "cond_dim": _INT, "mlp_dims": _opt(list, False),
    "activation_type": _opt(str, False), "tanh_output": _opt(bool, False), "residual_style": _opt(bool, False),
    "use_layernorm": _opt(bool, False), "fixed_std": _opt(float), "learn_fixed_std": _opt(bool, False),
    "std_min": _opt(float, False), "std_max": _opt(float, False), "_target_": _opt(str),
}
CRITIC: Schema = {"cond_dim": _INT, "mlp_dims": _opt(list, False), "activation_type": _opt(str, False),
                  "use_layernorm": _opt(bool, False), "residual_style": _opt(bool, False), "_target_": _opt(str)}

FINETUNE: Schema = {
    "name": _opt(str, False), "logdir": _STR, "base_policy_path": _opt(str), "normalization_path": _opt(str),
    "resume": _opt(str), "seed": _INT, "device": _opt(str), "env_name": _STR, "obs_dim": _INT, "action_dim": _INT,
    "denoising_steps": _opt(int, False), "ft_denoising_steps": _opt(int, False), "cond_steps": _INT,
    "horizon_steps": _INT, "act_steps": _INT, "wandb": ANY_MAPPING,
    "env": {"n_envs": _INT, "name": _opt(str, False), "max_episode_steps": _INT,
            "reset_at_iteration": _opt(bool, False), "save_video": _opt(bool, False),
            "best_reward_threshold_for_success": _opt(float, False), "asynchronous": _opt(bool, False),
            "wrappers": ANY_MAPPING},
    "train": {
        "n_train_itr": _INT, "n_critic_warmup_itr": _opt(int, False), "n_steps": _INT, "gamma": _FLOAT,
        "actor_lr": _FLOAT, "actor_weight_decay": _opt(float, False), "actor_lr_scheduler": _SCHEDULER,
        "critic_lr": _FLOAT, "critic_weight_decay": _opt(float, False), "critic_lr_scheduler": _SCHEDULER,
        "save_model_freq": _INT, "val_freq": _INT, "render": ANY_MAPPING,
        "reward_scale_running": _opt(bool, False), "reward_scale_const": _opt(float, False),
        "gae_lambda": _FLOAT, "batch_size": _INT, "update_epochs": _INT, "vf_coef": _opt(float, False),
        "ent_coef": _opt(float, False), "target_kl": _opt(float), "max_grad_norm": _opt(float),
        "use_bc_loss": _opt(bool, False), "bc_loss_coeff": _opt(float, False), "n_eval_episodes": _opt(int, False),
        "eta_lr": _opt(float, False), "eta_weight_decay": _opt(float, False), "eta_lr_scheduler": ANY_MAPPING,
        "eta_update_interval": _opt(int, False), "logprob_batch_size": _opt(int, False),
    },
    "model": {
        "gamma_denoising": _opt(float, False), "clip_ploss_coef": _FLOAT, "clip_ploss_coef_base": _opt(float, False),
        "clip_ploss_coef_rate": _opt(float, False), "clip_vloss_coef": _opt(float),
        "clip_advantage_lower_quantile": _opt(float, False), "clip_advantage_upper_quantile": _opt(float, False),
        "norm_adv": _opt(bool, False), "randn_clip_value": _opt(float, False),
        "min_sampling_denoising_std": _opt((float, dict), False), "min_logprob_denoising_std": _opt(float, False),
        "denoised_clip_value": _opt(float), "final_action_clip_value": _opt(float),
        "predict_epsilon": _opt(bool, False),
        "use_ddim": _opt(bool, False), "ddim_steps": _opt(int), "eta": ANY_MAPPING, "network_path": _opt(str),
        "learn_eta": _opt(bool, False), "eps_clip_value": _opt(float), "ft_denoising_steps_d": _opt(int, False),
        "ft_denoising_steps_t": _opt(int, False),
        "actor": ANY_MAPPING, "critic": CRITIC, "ft_denoising_steps": _opt(int, False),
        "horizon_steps": _opt(int, False), "obs_dim": _opt(int, False), "action_dim": _opt(int, False),
        "denoising_steps": _opt(int, False), "cond_steps": _opt(int, False), "device": _opt(str),
        "_target_": _opt(str),
    },
}


@dataclass(frozen=True)
class PPOSettings:
    """Everything the PPO loop needs besides the models (defaults are upstream's)."""

    n_train_itr: int
    n_steps: int
    n_envs: int
    gamma: float
    gae_lambda: float
    batch_size: int
    update_epochs: int
    vf_coef: float
    ent_coef: float
    target_kl: float | None
    max_grad_norm: float | None
    n_critic_warmup_itr: int
    reward_scale_running: bool
    reward_scale_const: float
    val_freq: int
    save_model_freq: int
    n_eval_episodes: int
    actor_lr: float
    critic_lr: float
    actor_weight_decay: float
    critic_weight_decay: float
    actor_schedule: CosineWarmupRestarts
    critic_schedule: CosineWarmupRestarts
    clip_ploss_coef: float
    clip_vloss_coef: float | None
    norm_adv: bool
    clip_advantage_lower_quantile: float
    clip_advantage_upper_quantile: float
    eta_lr: float = 0.0  # the eta optimizer's (model.learn_eta only)
    eta_weight_decay: float = 0.0
    eta_schedule: CosineWarmupRestarts | None = None
    eta_update_interval: int = 1  # eta steps on minibatches whose index within the epoch is a multiple of this
    logprob_batch_size: int = 10000  # rows per chunk when scoring a rollout's values and log-probs


def is_diffusion(cfg: dict[str, Any]) -> bool:
    """DPPO (diffusion actor) or the Gaussian baseline: told apart by the actor's keys."""
    actor = (cfg.get("model") or {}).get("actor") or {}
    return "time_dim" in actor or "ft_denoising_steps" in cfg or "ft_denoising_steps" in (cfg.get("model") or {})


def validate_finetune_config(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = validate(cfg, FINETUNE)
    actor = cfg["model"].get("actor")
    if not isinstance(actor, dict):
        raise ConfigError("missing required config section 'model.actor'")
    cfg["model"]["actor"] = validate(actor, NETWORK if is_diffusion(cfg) else GAUSSIAN_ACTOR, "model.actor.")
    positive(cfg, "train.n_train_itr", "train.n_steps", "env.n_envs", "train.batch_size", "train.update_epochs",
             "train.val_freq", "train.save_model_freq", "act_steps", "cond_steps", "horizon_steps",
             "train.actor_lr", "train.critic_lr", "train.max_grad_norm", "train.target_kl", "model.clip_ploss_coef")
    if cfg["act_steps"] > cfg["horizon_steps"]:
        raise ConfigError(f"act_steps={cfg['act_steps']} cannot exceed horizon_steps={cfg['horizon_steps']}")
    return cfg


def ppo_settings(cfg: dict[str, Any]) -> PPOSettings:
    t, m = cfg["train"], cfg["model"]
    return PPOSettings(
        n_train_itr=t["n_train_itr"], n_steps=t["n_steps"], n_envs=cfg["env"]["n_envs"], gamma=t["gamma"],
        gae_lambda=t["gae_lambda"], batch_size=t["batch_size"], update_epochs=t["update_epochs"],
        vf_coef=t.get("vf_coef", 0.5), ent_coef=t.get("ent_coef", 0.0), target_kl=t.get("target_kl"),
        max_grad_norm=t.get("max_grad_norm"), n_critic_warmup_itr=t.get("n_critic_warmup_itr", 0),
        reward_scale_running=t.get("reward_scale_running", True), reward_scale_const=t.get("reward_scale_const", 1.0),
        val_freq=t["val_freq"], save_model_freq=t["save_model_freq"], n_eval_episodes=t.get("n_eval_episodes", 10),
        actor_lr=t["actor_lr"], critic_lr=t["critic_lr"], actor_weight_decay=t.get("actor_weight_decay", 0.0),
        critic_weight_decay=t.get("critic_weight_decay", 0.0),
        actor_schedule=lr_from_config(t["actor_lr_scheduler"], t["actor_lr"]),
        critic_schedule=lr_from_config(t["critic_lr_scheduler"], t["critic_lr"]),
        clip_ploss_coef=m["clip_ploss_coef"], clip_vloss_coef=m.get("clip_vloss_coef"),
        norm_adv=m.get("norm_adv", True), clip_advantage_lower_quantile=m.get("clip_advantage_lower_quantile", 0.0),
        clip_advantage_upper_quantile=m.get("clip_advantage_upper_quantile", 1.0),
        **_eta_training(cfg), logprob_batch_size=int(t.get("logprob_batch_size", 10000)),
    )


def _eta_training(cfg: dict[str, Any]) -> dict[str, Any]:
    """train.eta_* (read only with model.learn_eta, as upstream); the schedule's peak is eta_lr."""
    t = cfg["train"]
    if not (cfg["model"].get("learn_eta") and t.get("eta_lr") is not None):
        if cfg["model"].get("learn_eta"):
            raise ConfigError("model.learn_eta needs train.eta_lr")
        return {}
    sched = t.get("eta_lr_scheduler") or {}
    if "first_cycle_steps" not in sched:
        raise ConfigError("model.learn_eta needs train.eta_lr_scheduler.first_cycle_steps")
    interval = int(t.get("eta_update_interval", 1))
    if interval < 1:
        raise ConfigError(f"config key 'train.eta_update_interval' must be > 0, got {interval}")
    return {"eta_lr": float(t["eta_lr"]), "eta_weight_decay": float(t.get("eta_weight_decay", 0.0)),
            "eta_schedule": lr_from_config(sched, t["eta_lr"]), "eta_update_interval": interval}


@dataclass(frozen=True)
class DPPOSettings:
    """DPPO's own knobs (the two-level MDP), upstream's names and defaults."""

    ft_denoising_steps: int
    gamma_denoising: float
    clip_ploss_coef_base: float
    clip_ploss_coef_rate: float
    min_sampling_denoising_std: float
    min_logprob_denoising_std: float
    reward_horizon: int  # = act_steps: only executed actions carry the policy gradient
    use_bc_loss: bool
    bc_loss_coeff: float
    eta: EtaConfig | None = None  # DDIM eta (model.eta); None: eta = 0
    learn_eta: bool = False
    ft_denoising_steps_d: int = 0  # anneal: every ft_denoising_steps_t iterations, K -= ft_denoising_steps_d
    ft_denoising_steps_t: int = 0
    # model.min_sampling_denoising_std given as a schedule mapping: its value after k iterations (k = 0 first)
    min_sampling_std_schedule: CosineWarmupRestarts | None = None

    def min_sampling_std(self, iterations: int) -> float:
        """The exploration std floor after `iterations` scheduler steps (one per iteration, as upstream)."""
        if self.min_sampling_std_schedule is None:
            return self.min_sampling_denoising_std
        return self.min_sampling_std_schedule(iterations)


def dppo_settings(cfg: dict[str, Any]) -> DPPOSettings:
    m, t = cfg["model"], cfg["train"]
    ft = cfg.get("ft_denoising_steps", m.get("ft_denoising_steps"))
    if ft is None:
        raise ConfigError("missing required config key 'ft_denoising_steps'")
    eta = m.get("eta")
    if m.get("learn_eta") and not m.get("use_ddim"):
        raise ConfigError("model.learn_eta needs model.use_ddim (DDPM has no eta)")
    min_std = m.get("min_sampling_denoising_std", 0.1)
    schedule = _std_schedule(min_std) if isinstance(min_std, dict) else None
    return DPPOSettings(
        ft_denoising_steps=int(ft), gamma_denoising=float(m.get("gamma_denoising", 0.99)),
        clip_ploss_coef_base=float(m.get("clip_ploss_coef_base", 1e-3)),
        clip_ploss_coef_rate=float(m.get("clip_ploss_coef_rate", 3.0)),
        min_sampling_denoising_std=schedule(0) if schedule is not None else float(min_std),
        min_logprob_denoising_std=float(m.get("min_logprob_denoising_std", 0.1)),
        reward_horizon=int(cfg["act_steps"]), use_bc_loss=bool(t.get("use_bc_loss", False)),
        bc_loss_coeff=float(t.get("bc_loss_coeff", 0.0)),
        eta=None if eta is None else eta_config(eta, int(cfg["action_dim"]), int(cfg["obs_dim"]) * cfg["cond_steps"]),
        learn_eta=bool(m.get("learn_eta", False)), ft_denoising_steps_d=int(m.get("ft_denoising_steps_d", 0)),
        ft_denoising_steps_t=int(m.get("ft_denoising_steps_t", 0)), min_sampling_std_schedule=schedule,
    )


def _std_schedule(section: dict[str, Any]) -> CosineWarmupRestarts:
    """min_sampling_denoising_std as a scheduler mapping ({_target_, first_cycle_steps, max_lr, min_lr,
    warmup_steps, cycle_mult, gamma}): upstream's cosine warm-up-restarts curve over iterations."""
    known = {"_target_", "first_cycle_steps", "max_lr", "min_lr", "warmup_steps", "cycle_mult", "gamma"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"unknown config key 'model.min_sampling_denoising_std.{unknown[0]}'")
    for key in ("first_cycle_steps", "max_lr"):
        if key not in section:
            raise ConfigError(f"missing required config key 'model.min_sampling_denoising_std.{key}'")
    try:
        return lr_from_config(section, section["max_lr"])
    except ValueError as exc:
        raise ConfigError(f"model.min_sampling_denoising_std: {exc}") from None
