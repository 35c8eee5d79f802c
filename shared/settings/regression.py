"""What the diffusion-regression baselines (RWR, AWR) share on top of a policy run's keys."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import non_negative, positive, setting
from shared.errors import ConfigError
from shared.param_spec.families import DenoiserNetworkConfig
from shared.settings.model import DiffusionConfig
from shared.settings.run import PolicyRunConfig


@dataclass(frozen=True, kw_only=True)
class DiffusionRegressionModelConfig:
    """The `model` keys RWR's and AWR's diffusion policies share (upstream RWRDiffusion/AWRDiffusion);
    subclasses add the policy network (`network` / `actor`) and name it in `policy_network`."""

    horizon_steps: int = setting(check=positive)
    obs_dim: int = setting(check=positive)
    action_dim: int = setting(check=positive)
    cond_steps: int = setting(1, check=positive)
    denoising_steps: int = setting(100, check=positive)
    min_sampling_denoising_std: float = setting(0.1, check=non_negative, doc="exploration std floor, every step")
    predict_epsilon: bool = True
    denoised_clip_value: float | None = setting(1.0, check=positive)
    randn_clip_value: float = setting(10.0, check=positive)
    final_action_clip_value: float | None = setting(None, check=positive)
    use_ddim: bool = setting(False, doc="must stay false: upstream samples these baselines with DDPM only")

    algorithm = ""  # "RWR", "AWR": for messages

    def __post_init__(self) -> None:
        if self.use_ddim:
            raise ConfigError(f"model.use_ddim: {self.algorithm} samples with DDPM only (as upstream "
                              f"{self.algorithm}Diffusion)")

    def policy_network(self) -> DenoiserNetworkConfig:
        raise NotImplementedError

    def diffusion(self) -> DiffusionConfig:
        return DiffusionConfig(
            network=self.policy_network(), horizon_steps=self.horizon_steps, obs_dim=self.obs_dim,
            action_dim=self.action_dim, cond_steps=self.cond_steps, denoising_steps=self.denoising_steps,
            predict_epsilon=self.predict_epsilon, denoised_clip_value=self.denoised_clip_value,
            randn_clip_value=self.randn_clip_value, final_action_clip_value=self.final_action_clip_value)


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
