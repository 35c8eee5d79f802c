"""An evaluation config (upstream cfg/gym/eval/<env>/eval_{diffusion,gaussian}_mlp.yaml), read once."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import positive, setting
from shared.settings.model import DiffusionConfig
from shared.settings.run import PolicyRunConfig


@dataclass(frozen=True, kw_only=True)
class EvalConfig(PolicyRunConfig):
    """A policy (`model`: DiffusionConfig or GaussianModelConfig) run in `env` without training.
    Upstream runs n_steps policy steps in n_envs envs and counts the episodes that finish."""

    n_steps: int = setting(check=positive)

    @property
    def is_diffusion(self) -> bool:
        return isinstance(self.model, DiffusionConfig)
