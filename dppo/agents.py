"""Build the PPO agent a fine-tuning config describes, for either backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from shared.errors import ConfigError
from shared.finetune_config import is_diffusion, ppo_settings
from shared.model_config import _activation, _dims, _get, critic_obs_config
from shared.param_spec import GaussianMLPConfig, critic_obs_spec, gaussian_mlp_spec, torch_default_init


def gaussian_actor_config(cfg: dict[str, Any]) -> GaussianMLPConfig:
    a, where = cfg["model"]["actor"], "model.actor"
    return GaussianMLPConfig(
        action_dim=_get(a, "action_dim", where, int), horizon_steps=_get(a, "horizon_steps", where, int),
        cond_dim=_get(a, "cond_dim", where, int), mlp_dims=_dims(a, "mlp_dims", where, [256, 256, 256]),
        activation_type=_activation(a, "activation_type", where, "Mish"),
        tanh_output=_get(a, "tanh_output", where, bool, True), residual_style=_get(a, "residual_style", where, bool,
                                                                                      False),
        use_layernorm=_get(a, "use_layernorm", where, bool, False), fixed_std=_get(a, "fixed_std", where, float, None),
        learn_fixed_std=_get(a, "learn_fixed_std", where, bool, False),
        std_min=_get(a, "std_min", where, float, 0.01), std_max=_get(a, "std_max", where, float, 1.0))


def noise_shape(cfg: dict[str, Any]) -> Callable[[int], tuple[int, ...]]:
    """Shape of the numpy noise one policy step of n envs consumes."""
    ta, da = cfg["horizon_steps"], cfg["action_dim"]
    if is_diffusion(cfg):
        model = cfg["model"]
        steps = model["ddim_steps"] if model.get("use_ddim") else cfg["denoising_steps"]
        return lambda n: (steps + 1, n, ta, da)
    return lambda n: (n, ta * da)


def make_agent(cfg: dict[str, Any], backend: str) -> Any:
    if is_diffusion(cfg):
        raise ConfigError("DPPO (diffusion) fine-tuning is not available in this build yet; "
                          "use a Gaussian actor config")
    actor = gaussian_actor_config(cfg)
    critic = critic_obs_config(cfg["model"]["critic"], "model.critic")
    overrides = {"actor.logvar": math.log(actor.fixed_std**2)} if actor.learn_fixed_std else None
    spec = gaussian_mlp_spec(actor, "actor.")
    spec.update(critic_obs_spec(critic, "critic."))
    init = torch_default_init(spec, cfg["seed"], overrides)
    settings, clip = ppo_settings(cfg), float(cfg["model"].get("randn_clip_value", 3.0))
    if backend == "torch":
        from core_torch.ppo_gaussian import PPOGaussianAgent
    elif backend == "tf":
        from core_tf.ppo_gaussian import PPOGaussianAgent
    else:
        raise ConfigError(f"unknown backend {backend!r}; choose torch or tf")
    return PPOGaussianAgent(actor, critic, settings, init, clip)
