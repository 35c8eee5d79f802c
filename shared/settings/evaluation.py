"""An evaluation config (upstream cfg/gym/eval/<env>/eval_{diffusion,gaussian}_mlp.yaml), read once."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import positive, setting
from shared.errors import ConfigError
from shared.settings.model import DiffusionConfig
from shared.settings.run import PolicyRunConfig


@dataclass(frozen=True, kw_only=True)
class EvalConfig(PolicyRunConfig):
    """A policy (`model`: DiffusionConfig or GaussianModelConfig) run in `env` without training.
    Upstream runs n_steps policy steps in n_envs envs and counts the episodes that finish."""

    n_steps: int = setting(check=positive)
    use_ddim: bool | None = setting(None, doc="upstream's image eval configs repeat model.use_ddim here")
    ddim_steps: int | None = setting(None, check=positive, doc="upstream's image eval configs repeat model.ddim_steps")

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("use_ddim", "ddim_steps"):
            top = getattr(self, key)
            if top is not None and top != getattr(self.model, key, None):
                raise ConfigError(f"config key '{key}'={top} disagrees with 'model.{key}'="
                                  f"{getattr(self.model, key, None)}")

    @property
    def is_diffusion(self) -> bool:
        return isinstance(self.model, DiffusionConfig)
