"""An evaluation config (upstream cfg/gym/eval/<env>/eval_{diffusion,gaussian}_mlp.yaml), read once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config_reader import non_negative, positive, setting
from shared.errors import ConfigError
from shared.settings.finetune import EnvConfig
from shared.settings.model import DiffusionConfig


@dataclass(frozen=True)
class EvalConfig:
    """A policy (`model`: DiffusionConfig or GaussianModelConfig) run in `env` without training.
    Upstream runs n_steps policy steps in n_envs envs and counts the episodes that finish."""

    logdir: str
    env_name: str
    obs_dim: int = setting(check=positive)
    action_dim: int = setting(check=positive)
    cond_steps: int = setting(check=positive)
    horizon_steps: int = setting(check=positive)
    act_steps: int = setting(check=positive)
    n_steps: int = setting(check=positive)
    env: EnvConfig = setting()
    model: Any = setting()
    seed: int = setting(42, check=non_negative)
    base_policy_path: str | None = None
    normalization_path: str | None = None
    denoising_steps: int | None = setting(None, check=positive)
    ft_denoising_steps: int | None = setting(None, check=positive)
    wandb: dict | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.act_steps > self.horizon_steps:
            raise ConfigError(f"act_steps={self.act_steps} cannot exceed horizon_steps={self.horizon_steps}")

    @property
    def is_diffusion(self) -> bool:
        return isinstance(self.model, DiffusionConfig)
