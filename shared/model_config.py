"""Typed views of a config's `model` section, with one clear message per bad key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError
from shared.param_spec import ACTIVATIONS, CriticObsConfig, DiffusionMLPConfig, as_tuple


def config_value(section: dict, key: str, where: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in section:
        if default is ...:
            raise ConfigError(f"missing required config key '{where}.{key}'")
        return default
    if section[key] is None:  # explicit null: "off" for optional values
        if default is ...:
            raise ConfigError(f"config key '{where}.{key}' must not be null")
        return None
    value = section[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(f"config key '{where}.{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    if not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"config key '{where}.{key}' must be {name}, got {value!r}")
    return value


def config_dims(section: dict, key: str, where: str, default: Any = ...) -> tuple[int, ...] | None:
    value = config_value(section, key, where, list, default)
    if value is None:
        return None if default is None else as_tuple(default)
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"config key '{where}.{key}' must be a non-empty list of positive ints, got {value!r}")
    return as_tuple(value)


def config_activation(section: dict, key: str, where: str, default: str) -> str:
    value = config_value(section, key, where, str, default)
    if value not in ACTIVATIONS:
        raise ConfigError(f"config key '{where}.{key}' must be one of {', '.join(ACTIVATIONS)}, got {value!r}")
    return value


def diffusion_mlp_config(section: dict, where: str) -> DiffusionMLPConfig:
    return DiffusionMLPConfig(
        action_dim=config_value(section, "action_dim", where, int),
        horizon_steps=config_value(section, "horizon_steps", where, int),
        cond_dim=config_value(section, "cond_dim", where, int),
        time_dim=config_value(section, "time_dim", where, int, 16),
        mlp_dims=config_dims(section, "mlp_dims", where, [256, 256]),
        cond_mlp_dims=config_dims(section, "cond_mlp_dims", where, None),
        activation_type=config_activation(section, "activation_type", where, "Mish"),
        out_activation_type=config_activation(section, "out_activation_type", where, "Identity"),
        use_layernorm=config_value(section, "use_layernorm", where, bool, False),
        residual_style=config_value(section, "residual_style", where, bool, False),
        dropout=config_value(section, "dropout", where, float, 0.0),
    )


def critic_obs_config(section: dict, where: str) -> CriticObsConfig:
    return CriticObsConfig(
        cond_dim=config_value(section, "cond_dim", where, int),
        mlp_dims=config_dims(section, "mlp_dims", where, [256, 256]),
        activation_type=config_activation(section, "activation_type", where, "Mish"),
        use_layernorm=config_value(section, "use_layernorm", where, bool, False),
        residual_style=config_value(section, "residual_style", where, bool, False),
    )


@dataclass(frozen=True)
class DiffusionConfig:
    """Arguments of the diffusion model (upstream DiffusionModel's names)."""

    network: DiffusionMLPConfig
    horizon_steps: int
    obs_dim: int
    action_dim: int
    cond_steps: int = 1
    denoising_steps: int = 100
    predict_epsilon: bool = True
    denoised_clip_value: float | None = 1.0
    randn_clip_value: float = 10.0
    final_action_clip_value: float | None = None
    use_ddim: bool = False
    ddim_steps: int | None = None
    eps_clip_value: float | None = None  # DDIM only: clamp the recomputed epsilon to +-this (upstream)

    def __post_init__(self) -> None:
        net = self.network
        if net.action_dim != self.action_dim or net.horizon_steps != self.horizon_steps:
            raise ConfigError(
                f"model.network (action_dim={net.action_dim}, horizon_steps={net.horizon_steps}) disagrees "
                f"with the model (action_dim={self.action_dim}, horizon_steps={self.horizon_steps})"
            )
        if net.cond_dim != self.obs_dim * self.cond_steps:
            raise ConfigError(
                f"model.network.cond_dim={net.cond_dim} must equal obs_dim * cond_steps "
                f"= {self.obs_dim} * {self.cond_steps}"
            )
        if self.denoising_steps < 1:
            raise ConfigError(f"denoising_steps must be >= 1, got {self.denoising_steps}")
        if self.use_ddim and not (self.ddim_steps and 1 <= self.ddim_steps <= self.denoising_steps):
            raise ConfigError(f"use_ddim needs ddim_steps in [1, {self.denoising_steps}], got {self.ddim_steps}")


def diffusion_config(cfg: dict, network_key: str = "network") -> DiffusionConfig:
    """Read the model section of a pretrain (`network`) or finetune (`actor`) config."""
    model = cfg.get("model")
    if not isinstance(model, dict):
        raise ConfigError("missing required config section 'model'")
    net = model.get(network_key)
    if not isinstance(net, dict):
        raise ConfigError(f"missing required config section 'model.{network_key}'")
    top = {**cfg, **model}
    cond_steps = config_value(top, "cond_steps", "model", int, 1)
    return DiffusionConfig(
        network=diffusion_mlp_config(net, f"model.{network_key}"),
        horizon_steps=config_value(top, "horizon_steps", "model", int),
        obs_dim=config_value(top, "obs_dim", "model", int),
        action_dim=config_value(top, "action_dim", "model", int),
        cond_steps=cond_steps,
        denoising_steps=config_value(top, "denoising_steps", "model", int),
        predict_epsilon=config_value(model, "predict_epsilon", "model", bool, True),
        denoised_clip_value=config_value(model, "denoised_clip_value", "model", float, 1.0),
        randn_clip_value=config_value(model, "randn_clip_value", "model", float, 10.0),
        final_action_clip_value=config_value(model, "final_action_clip_value", "model", float, None),
        use_ddim=config_value(model, "use_ddim", "model", bool, False),
        ddim_steps=config_value(model, "ddim_steps", "model", int, None),
        eps_clip_value=config_value(model, "eps_clip_value", "model", float, None),
    )
