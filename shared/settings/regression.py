"""What the diffusion-regression baselines (RWR, AWR) share on top of a policy run's keys."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config_reader import setting
from shared.errors import ConfigError
from shared.settings.model import DiffusionConfig
from shared.settings.run import PolicyRunConfig


@dataclass(frozen=True, kw_only=True)
class DiffusionRegressionConfig(PolicyRunConfig):
    """A run that regresses the whole diffusion chain on weighted actions (subclasses add `train`)."""

    resume: str | None = None
    resume_fresh_optimizer: bool = setting(
        False, doc="resume from a checkpoint without optimizer state (weights only): fresh AdamW, schedules kept")

    algorithm = ""  # "rwr", "awr": recorded in checkpoints
    is_diffusion = True

    def __post_init__(self) -> None:
        super().__post_init__()
        m = self.model
        for key in ("obs_dim", "action_dim", "cond_steps", "horizon_steps", "denoising_steps"):
            top = getattr(self, key)
            if top is not None and top != getattr(m, key):
                raise ConfigError(f"config key '{key}'={top} disagrees with 'model.{key}'={getattr(m, key)}")
        if self.ft_denoising_steps is not None:
            raise ConfigError(f"ft_denoising_steps is a DPPO key; {self.algorithm.upper()} trains every denoising step")

    @property
    def diffusion(self) -> DiffusionConfig:
        return self.model.diffusion()
