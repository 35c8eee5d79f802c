"""A reward-weighted regression fine-tuning config (upstream cfg/gym/finetune/<env>/ft_rwr_diffusion_mlp.yaml),
read once, and RWRSettings, the typed view the twins and the driver take.

RWR fine-tunes a plain diffusion policy (upstream RWRDiffusion: a DiffusionModel whose exploration
samples floor every reverse step's std at min_sampling_denoising_std) by behaviour cloning on its own
on-policy action chunks, each weighted by exp(beta * normalised discounted return), clipped at
max_reward_weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import non_negative, positive, setting, unit_interval
from shared.errors import ConfigError
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec.families import DenoiserNetworkConfig
from shared.settings.model import LRSchedulerConfig
from shared.settings.regression import DiffusionRegressionConfig, DiffusionRegressionModelConfig


@dataclass(frozen=True)
class RWRTrainConfig:
    """The `train` section of an RWR config (upstream's names and defaults)."""

    n_train_itr: int = setting(check=positive)
    n_steps: int = setting(check=positive)
    gamma: float = setting(check=unit_interval, doc="discount per policy step (one action chunk)")
    lr: float = setting(check=positive)
    lr_scheduler: LRSchedulerConfig = setting()
    save_model_freq: int = setting(check=positive)
    val_freq: int = setting(check=positive)
    batch_size: int = setting(check=positive)
    update_epochs: int = setting(check=positive)
    beta: float = setting(check=non_negative, doc="weight = exp(beta * normalised return)")
    max_reward_weight: float = setting(check=positive, doc="weights are clipped at this value")
    weight_decay: float = setting(0.0, check=non_negative)
    max_grad_norm: float | None = setting(None, check=positive)
    n_critic_warmup_itr: int = setting(
        0, check=non_negative, doc="no effect: RWR has no critic (upstream's robomimic RWR configs set it; its agent "
                                   "never reads it)")
    force_train: bool = setting(False, doc="no evaluation iterations")
    n_eval_episodes: int = setting(10, check=positive)

    def __post_init__(self) -> None:
        if self.lr_scheduler.cycle_mult != 1.0 or self.lr_scheduler.gamma != 1.0:
            raise ConfigError("train.lr_scheduler: RWR's schedule has cycle_mult = gamma = 1 (upstream fixes both)")


@dataclass(frozen=True, kw_only=True)
class RWRModelConfig(DiffusionRegressionModelConfig):
    """The `model` section of an RWR config (upstream RWRDiffusion's arguments)."""

    network: DenoiserNetworkConfig

    algorithm = "RWR"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.diffusion()  # checks the network against the sizes

    def policy_network(self) -> DenoiserNetworkConfig:
        return self.network


@dataclass(frozen=True)
class RWRSettings:
    """Everything the RWR loop and its update need besides the model."""

    n_train_itr: int
    n_steps: int
    n_envs: int
    gamma: float
    batch_size: int
    update_epochs: int
    lr: float
    weight_decay: float
    schedule: CosineWarmupRestarts
    max_grad_norm: float | None
    beta: float
    max_reward_weight: float
    min_sampling_denoising_std: float
    val_freq: int
    save_model_freq: int
    n_eval_episodes: int = 10
    force_train: bool = False
    reset_at_iteration: bool = True
    reset_after_eval_iteration: bool = False


@dataclass(frozen=True, kw_only=True)
class RWRConfig(DiffusionRegressionConfig):
    """Everything `dppo finetune` reads for RWR (`model` is RWRModelConfig)."""

    train: RWRTrainConfig = setting()

    algorithm = "rwr"

    @property
    def rwr(self) -> RWRSettings:
        t, m = self.train, self.model
        return RWRSettings(
            n_train_itr=t.n_train_itr, n_steps=t.n_steps, n_envs=self.env.n_envs, gamma=t.gamma,
            batch_size=t.batch_size, update_epochs=t.update_epochs, lr=t.lr, weight_decay=t.weight_decay,
            schedule=t.lr_scheduler.schedule(t.lr), max_grad_norm=t.max_grad_norm, beta=t.beta,
            max_reward_weight=t.max_reward_weight, min_sampling_denoising_std=m.min_sampling_denoising_std,
            val_freq=t.val_freq, save_model_freq=t.save_model_freq, n_eval_episodes=t.n_eval_episodes,
            force_train=t.force_train, reset_at_iteration=self.env.reset_at_iteration,
            reset_after_eval_iteration=self.env.reset_after_eval_iteration)

    def noise_steps(self) -> int:
        return self.model.denoising_steps
