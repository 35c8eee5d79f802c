"""A pre-training config (upstream cfg/gym/pretrain/<env>/pre_diffusion_mlp.yaml), read once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config.reader import non_negative, positive, seed_range, setting, unit_interval
from shared.errors import ConfigError
from shared.settings.model import DiffusionConfig, LRSchedulerConfig


@dataclass(frozen=True)
class PretrainTrainConfig:
    n_epochs: int = setting(check=positive)
    batch_size: int = setting(check=positive)
    learning_rate: float = setting(check=positive)
    weight_decay: float = setting(check=non_negative)
    lr_scheduler: LRSchedulerConfig = setting()
    epoch_start_ema: int = setting(check=non_negative)
    update_ema_freq: int = setting(check=positive)
    save_model_freq: int = setting(check=positive)
    max_grad_norm: float | None = setting(None, check=positive)
    max_n_episodes: int | None = setting(None, check=positive)

    def __post_init__(self) -> None:
        self.lr_scheduler.check_steps(self.n_epochs, "lr_scheduler")  # one scheduler step per epoch


@dataclass(frozen=True)
class EMAConfig:
    decay: float = setting(check=unit_interval)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything `dppo pretrain` reads. `raw` keeps the resolved mapping for config.json,
    checkpoint metadata and wandb."""

    logdir: str
    train_dataset_path: str
    seed: int = setting(check=seed_range)
    train: PretrainTrainConfig = setting()
    model: DiffusionConfig = setting()
    ema: EMAConfig = setting()
    normalization_path: str | None = None
    resume: str | None = None
    resume_fresh_optimizer: bool = setting(
        False, doc="resume from a checkpoint without optimizer state (weights only): fresh AdamW, schedule kept")
    env: str | None = None
    obs_dim: int | None = setting(None, check=positive)
    action_dim: int | None = setting(None, check=positive)
    denoising_steps: int | None = setting(None, check=positive)
    horizon_steps: int | None = setting(None, check=positive)
    cond_steps: int | None = setting(None, check=positive)
    wandb: dict | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key in ("obs_dim", "action_dim", "denoising_steps", "horizon_steps", "cond_steps"):
            top = getattr(self, key)
            if top is not None and top != getattr(self.model, key):
                raise ConfigError(f"config key '{key}'={top} disagrees with 'model.{key}'={getattr(self.model, key)}")

    @property
    def diffusion(self) -> DiffusionConfig:
        return self.model
