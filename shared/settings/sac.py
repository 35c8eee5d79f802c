"""A SAC fine-tuning config (upstream cfg/gym/finetune/<env>/sac_mlp.yaml), read once, and SACSettings, the typed
view the twins and the driver take.

SAC (upstream SAC_Gaussian / TrainSACAgent) fits a double-Q critic to r + gamma (1 - terminated)
(min(Q1', Q2')(s', a') - alpha log pi(a'|s')) with a' sampled from the current actor and Q' a Polyak-averaged
target, trains the tanh-squashed Gaussian actor to maximise min(Q1, Q2) - alpha log pi, and learns the
temperature alpha towards a target entropy. One env step per iteration; the critic steps every
batch_size / critic_replay_ratio iterations, the actor (twice, with the temperature) every
batch_size / actor_replay_ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import positive, setting
from shared.errors import ConfigError
from shared.settings.gaussian_replay import (
    EntropyTrainConfig,
    GaussianReplayConfig,
    GaussianReplayModelConfig,
    GaussianReplaySettings,
)

ACTOR_REPEATS = 2  # upstream steps the actor and the temperature twice on each actor update


@dataclass(frozen=True, kw_only=True)
class SACTrainConfig(EntropyTrainConfig):
    """The `train` section of a SAC config: the common keys plus the two replay ratios (upstream's names)."""

    critic_replay_ratio: float = setting(check=positive, doc="critic steps every batch_size / this iterations")
    actor_replay_ratio: float = setting(check=positive, doc="actor steps every batch_size / this iterations")

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("critic_replay_ratio", "actor_replay_ratio"):
            if int(self.batch_size / getattr(self, key)) < 1:
                raise ConfigError(f"train.{key}={getattr(self, key)} exceeds train.batch_size={self.batch_size}: "
                                  "updates every int(batch_size / ratio) iterations must be at least every one")


@dataclass(frozen=True, kw_only=True)
class SACModelConfig(GaussianReplayModelConfig):
    """The `model` section of a SAC config (upstream SAC_Gaussian's arguments)."""

    algorithm = "SAC"


@dataclass(frozen=True, kw_only=True)
class SACSettings(GaussianReplaySettings):
    critic_update_freq: int
    actor_update_freq: int
    actor_repeats: int = ACTOR_REPEATS


@dataclass(frozen=True, kw_only=True)
class SACConfig(GaussianReplayConfig):
    """Everything `dppo finetune` reads for SAC (`model` is SACModelConfig)."""

    train: SACTrainConfig = setting()

    algorithm = "sac"
    first_eval_after_exploration = 1  # upstream: itr > n_explore_steps

    @property
    def settings(self) -> SACSettings:
        t = self.train
        return SACSettings(**self.common_settings(), critic_update_freq=int(t.batch_size / t.critic_replay_ratio),
                           actor_update_freq=int(t.batch_size / t.actor_replay_ratio))
