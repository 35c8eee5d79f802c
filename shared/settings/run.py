"""What fine-tuning and evaluation configs share: the task, the policy's I/O sizes and the envs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config.reader import positive, seed_range, setting
from shared.errors import ConfigError


@dataclass(frozen=True)
class EnvConfig:
    """The `env` section (gym tasks; upstream's defaults)."""

    n_envs: int = setting(check=positive)
    max_episode_steps: int = setting(check=positive)
    name: str | None = None
    reset_at_iteration: bool = setting(True, doc="reset all envs before every iteration (upstream default)")
    reset_after_eval_iteration: bool = setting(
        False, doc="also reset right after an evaluation iteration (upstream's comment says so, its code never does)")
    asynchronous: bool = setting(False, doc="one process per env (gymnasium AsyncVectorEnv)")
    wrappers: dict | None = None
    specific: dict | None = None


@dataclass(frozen=True, kw_only=True)
class PolicyRunConfig:
    """A policy acting in vector envs: the keys fine-tuning and evaluation configs have in common.
    `model` is read by the caller (its type depends on the policy kind); `raw` keeps the mapping."""

    logdir: str
    env_name: str
    obs_dim: int = setting(check=positive)
    action_dim: int = setting(check=positive)
    cond_steps: int = setting(check=positive)
    horizon_steps: int = setting(check=positive)
    act_steps: int = setting(check=positive)
    env: EnvConfig = setting()
    model: Any = setting()
    seed: int = setting(42, check=seed_range)
    base_policy_path: str | None = None
    normalization_path: str | None = None
    denoising_steps: int | None = setting(None, check=positive)
    ft_denoising_steps: int | None = setting(None, check=positive)
    wandb: dict | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.act_steps > self.horizon_steps:
            raise ConfigError(f"act_steps={self.act_steps} cannot exceed horizon_steps={self.horizon_steps}")
