"""A DIPO fine-tuning config (upstream cfg/gym/finetune/<env>/ft_dipo_diffusion_mlp.yaml), read once, and
DIPOSettings, the typed view the twins and the driver take.

DIPO (upstream DIPODiffusion / TrainDIPODiffusionAgent) fits a double-Q critic by TD on replayed
transitions, moves the replayed action chunks uphill on min(Q1, Q2) by a few Adam steps on the actions
themselves (writing them back into the buffer), and trains the diffusion policy by plain denoising
regression on the moved chunks. A target actor (used for every sample: rollouts and TD next actions)
and a target critic trail the trained ones by Polyak averaging.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import non_negative, positive, setting, unit_interval
from shared.settings.replay import (
    DoubleQModelConfig,
    DoubleQRunConfig,
    ReplaySettings,
    ReplayTrainConfig,
    replay_settings_kwargs,
)


@dataclass(frozen=True, kw_only=True)
class DIPOTrainConfig(ReplayTrainConfig):
    """The `train` section of a DIPO config (upstream's names)."""

    target_ema_rate: float = setting(check=unit_interval, doc="Polyak rate of the target actor and critic")
    action_lr: float = setting(check=positive, doc="Adam learning rate of the action-gradient steps")
    action_gradient_steps: int = setting(check=non_negative, doc="Adam steps on each replayed chunk per minibatch")


@dataclass(frozen=True, kw_only=True)
class DIPOModelConfig(DoubleQModelConfig):
    """The `model` section of a DIPO config (upstream DIPODiffusion's arguments)."""

    algorithm = "DIPO"


@dataclass(frozen=True, kw_only=True)
class DIPOSettings(ReplaySettings):
    """Everything the DIPO loop and its updates need besides the models."""

    target_ema_rate: float
    action_lr: float
    action_gradient_steps: int
    action_grad_norm: float  # upstream: action_dim * act_steps * 0.1


@dataclass(frozen=True, kw_only=True)
class DIPOConfig(DoubleQRunConfig):
    """Everything `dppo finetune` reads for DIPO (`model` is DIPOModelConfig)."""

    train: DIPOTrainConfig = setting()

    algorithm = "dipo"

    @property
    def dipo(self) -> DIPOSettings:
        t = self.train
        return DIPOSettings(**replay_settings_kwargs(self, t.buffer_size), target_ema_rate=t.target_ema_rate,
                            action_lr=t.action_lr, action_gradient_steps=t.action_gradient_steps,
                            action_grad_norm=self.model.action_dim * self.act_steps * 0.1)
