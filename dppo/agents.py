"""Build the PPO agent a fine-tuning config describes, for either backend."""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dppo.checkpoints import read_checkpoint
from shared.checkpoint import check_strict
from shared.errors import CheckpointError, ConfigError
from shared.eta import eta_init, eta_spec
from shared.finetune_config import dppo_settings, is_diffusion, ppo_settings
from shared.model_config import (
    config_activation,
    config_dims,
    config_value,
    critic_obs_config,
    diffusion_config,
)
from shared.param_spec import (
    GaussianMLPConfig,
    critic_obs_spec,
    diffusion_mlp_spec,
    gaussian_mlp_spec,
    torch_default_init,
)


def gaussian_actor_config(cfg: dict[str, Any]) -> GaussianMLPConfig:
    a, where = cfg["model"]["actor"], "model.actor"

    def value(key: str, kind: type, default: object = ...) -> object:
        return config_value(a, key, where, kind, default)

    return GaussianMLPConfig(
        action_dim=value("action_dim", int), horizon_steps=value("horizon_steps", int),
        cond_dim=value("cond_dim", int), mlp_dims=config_dims(a, "mlp_dims", where, [256, 256, 256]),
        activation_type=config_activation(a, "activation_type", where, "Mish"),
        tanh_output=value("tanh_output", bool, True), residual_style=value("residual_style", bool, False),
        use_layernorm=value("use_layernorm", bool, False), fixed_std=value("fixed_std", float, None),
        learn_fixed_std=value("learn_fixed_std", bool, False),
        std_min=value("std_min", float, 0.01), std_max=value("std_max", float, 1.0))


def noise_shape(cfg: dict[str, Any]) -> Callable[[int], tuple[int, ...]]:
    """Shape of the numpy noise one policy step of n envs consumes."""
    ta, da = cfg["horizon_steps"], cfg["action_dim"]
    if is_diffusion(cfg):
        model = cfg["model"]
        steps = model["ddim_steps"] if model.get("use_ddim") else cfg["denoising_steps"]
        return lambda n: (steps + 1, n, ta, da)
    return lambda n: (n, ta * da)


def base_policy_params(path: str, spec: OrderedDict) -> OrderedDict:
    """Starting weights for a DPPO agent from `path`.

    A pre-training checkpoint gives its EMA policy (as upstream) to both actor and actor_ft; the
    critic and a DDIM eta keep their fresh initialisation. A fine-tuning checkpoint gives its whole model, as
    upstream restores it: frozen base actor, fine-tuned actor_ft and critic.
    """
    ckpt = read_checkpoint(path)
    if ckpt.meta.get("kind") == "finetune":
        weights = ckpt.group("model")
        check_strict(spec, weights, f"base policy {path}")
        return OrderedDict(weights)
    group = "ema" if "ema" in ckpt.groups else "model"
    weights = ckpt.group(group)
    base = OrderedDict((k[len("network."):], v) for k, v in weights.items() if k.startswith("network."))
    if not base:
        raise CheckpointError(f"{path} [{group}] holds no pre-trained diffusion policy (network.* tensors)")
    policy = OrderedDict((f"{p}{k}", v) for p in ("actor.", "actor_ft.") for k, v in base.items())
    check_strict({k: v for k, v in spec.items() if not k.startswith(("critic.", "eta."))}, policy,
                 f"base policy {path}")
    return policy


def make_diffusion_agent(cfg: dict[str, Any], backend: str) -> Any:
    dc = diffusion_config(cfg, "actor")
    critic = critic_obs_config(cfg["model"]["critic"], "model.critic")
    d = dppo_settings(cfg)
    steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
    if not 1 <= d.ft_denoising_steps <= steps:
        raise ConfigError(f"ft_denoising_steps must be in [1, {steps}], got {d.ft_denoising_steps}")
    if d.reward_horizon > dc.horizon_steps:
        raise ConfigError(f"act_steps={d.reward_horizon} cannot exceed horizon_steps={dc.horizon_steps}")
    spec = diffusion_mlp_spec(dc.network, "actor.")
    spec.update(diffusion_mlp_spec(dc.network, "actor_ft."))
    spec.update(critic_obs_spec(critic, "critic."))
    init = torch_default_init(spec, cfg["seed"])
    if d.eta is not None:  # upstream builds eta whenever model.eta is given (DDPM never reads it)
        spec.update(eta_spec(d.eta))
        init.update(eta_init(d.eta, cfg["seed"]))
    path = cfg.get("base_policy_path")
    if path:
        init.update(base_policy_params(path, spec))
    else:
        print("warning: no base_policy_path; fine-tuning a randomly initialised diffusion policy", file=sys.stderr)
    if backend == "torch":
        from core_torch.ppo_diffusion import PPODiffusionAgent
    elif backend == "tf":
        from core_tf.ppo_diffusion import PPODiffusionAgent
    else:
        raise ConfigError(f"unknown backend {backend!r}; choose torch or tf")
    return PPODiffusionAgent(dc, critic, ppo_settings(cfg), d, init)


def bc_noise_shape(cfg: dict[str, Any]) -> tuple[int, ...] | None:
    """Per-row shape (S+1, Ta, Da) of the teacher-chain noise the BC term needs, or None without BC."""
    if not (is_diffusion(cfg) and dppo_settings(cfg).use_bc_loss):
        return None
    steps_plus_one = noise_shape(cfg)(1)[0]
    return (steps_plus_one, cfg["horizon_steps"], cfg["action_dim"])


def make_agent(cfg: dict[str, Any], backend: str) -> Any:
    if is_diffusion(cfg):
        return make_diffusion_agent(cfg, backend)
    actor = gaussian_actor_config(cfg)
    critic = critic_obs_config(cfg["model"]["critic"], "model.critic")
    overrides = {"actor.logvar": math.log(actor.fixed_std**2)} if actor.learn_fixed_std else None
    spec = gaussian_mlp_spec(actor, "actor.")
    spec.update(critic_obs_spec(critic, "critic."))
    init = torch_default_init(spec, cfg["seed"], overrides)
    if cfg.get("base_policy_path"):  # a Gaussian PPO checkpoint: start from (or evaluate) its actor and critic
        weights = read_checkpoint(cfg["base_policy_path"]).group("model")
        check_strict(spec, weights, f"base policy {cfg['base_policy_path']}")
        init.update(weights)
    settings, clip = ppo_settings(cfg), float(cfg["model"].get("randn_clip_value", 3.0))
    if backend == "torch":
        from core_torch.ppo_gaussian import PPOGaussianAgent
    elif backend == "tf":
        from core_tf.ppo_gaussian import PPOGaussianAgent
    else:
        raise ConfigError(f"unknown backend {backend!r}; choose torch or tf")
    return PPOGaussianAgent(actor, critic, settings, init, clip)
