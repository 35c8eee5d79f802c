"""A Diffusion Q-Learning fine-tuning config (upstream cfg/gym/finetune/<env>/ft_dql_diffusion_mlp.yaml), read
once, and DQLSettings, the typed view the twins and the driver take.

DQL (upstream DQLDiffusion / TrainDQLDiffusionAgent) keeps a replay buffer of executed chunks, fits a
double-Q critic to r + gamma (1 - terminated) min(Q1', Q2')(s', a') with a' sampled by the current policy
and Q' a Polyak-averaged target copy, and trains the policy through its whole denoising chain: the
denoising loss of a freshly sampled chunk plus eta times the (normalised) negative Q of that chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import non_negative, setting, unit_interval
from shared.errors import ConfigError
from shared.settings.replay import (
    DoubleQModelConfig,
    DoubleQRunConfig,
    ReplaySettings,
    ReplayTrainConfig,
    replay_settings_kwargs,
)


@dataclass(frozen=True, kw_only=True)
class DQLTrainConfig(ReplayTrainConfig):
    """The `train` section of a DQL config: the replay keys plus DQL's two (upstream's names)."""

    target_ema_rate: float = setting(check=unit_interval, doc="Polyak rate of the target critic, every minibatch")
    eta: float = setting(check=non_negative, doc="weight of the normalised -Q term in the actor loss")


@dataclass(frozen=True, kw_only=True)
class DQLModelConfig(DoubleQModelConfig):
    """The `model` section of a DQL config (upstream DQLDiffusion's arguments)."""

    algorithm = "DQL"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.actor.dropout != 0.0:
            raise ConfigError(f"model.actor.dropout={self.actor.dropout}: DQL backpropagates through the sampling "
                              "chain, which this project runs without dropout; use 0")


@dataclass(frozen=True, kw_only=True)
class DQLSettings(ReplaySettings):
    """Everything the DQL loop and its updates need besides the models."""

    target_ema_rate: float
    eta: float
    final_action_clip: bool  # upstream's training chain clamps to [-1, 1] when final_action_clip_value is truthy


@dataclass(frozen=True, kw_only=True)
class DQLConfig(DoubleQRunConfig):
    """Everything `dppo finetune` reads for DQL (`model` is DQLModelConfig)."""

    train: DQLTrainConfig = setting()

    algorithm = "dql"

    @property
    def dql(self) -> DQLSettings:
        t = self.train
        # upstream DQL appends transition by transition: buffer_size counts transitions
        return DQLSettings(**replay_settings_kwargs(self, t.buffer_size), target_ema_rate=t.target_ema_rate,
                           eta=t.eta, final_action_clip=bool(self.model.final_action_clip_value))
