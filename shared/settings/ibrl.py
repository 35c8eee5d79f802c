"""An IBRL fine-tuning config (upstream cfg/gym/finetune/<env>/ibrl_mlp.yaml), read once, and IBRLSettings.

IBRL (upstream IBRL_Gaussian / TrainIBRLAgent: imitation-bootstrapped RL) keeps the pre-trained policy
frozen beside an RL actor that starts as a copy of it: each step both propose an action and the one with the
higher Q (the minimum of two ensemble members drawn at random) is executed, greedily or sampled with
probabilities from beta * Q; TD targets take the better of the two proposals under the target ensemble, the
actor (no entropy term, no squashing) maximises the ensemble's minimum Q, and target actor and critics trail
by Polyak averaging. The demonstrations go into the replay buffer before the first step.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.reader import non_negative, positive, setting
from shared.errors import ConfigError
from shared.settings.gaussian_replay import (
    GaussianReplayConfig,
    GaussianReplayModelConfig,
    GaussianReplaySettings,
    GaussianReplayTrainConfig,
)


@dataclass(frozen=True, kw_only=True)
class IBRLTrainConfig(GaussianReplayTrainConfig):
    """The `train` section of an IBRL config (upstream's names)."""

    critic_num_update: int = setting(check=positive, doc="critic steps per update")
    update_freq: int = setting(1, check=positive, doc="iterations between two updates")


@dataclass(frozen=True, kw_only=True)
class IBRLModelConfig(GaussianReplayModelConfig):
    """The `model` section of an IBRL config (upstream IBRL_Gaussian's arguments)."""

    n_critics: int = setting(check=positive, doc="ensemble size (two members are drawn for each comparison)")
    soft_action_sample: bool = setting(False, doc="sample the executed proposal with weights from beta * Q")
    soft_action_sample_beta: float = setting(0.1, check=non_negative, doc="inverse temperature of the soft pick")

    algorithm = "IBRL"
    ensemble = True
    actor_dropout = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_critics < 2:
            raise ConfigError(f"model.n_critics={self.n_critics}: IBRL compares the minimum of two members")
        if self.tanh_output:
            raise ConfigError("model.tanh_output: IBRL's actor is not squashed after sampling (upstream)")


@dataclass(frozen=True, kw_only=True)
class IBRLSettings(GaussianReplaySettings):
    critic_num_update: int
    update_freq: int
    n_critics: int
    soft_action_sample: bool
    soft_action_sample_beta: float


@dataclass(frozen=True, kw_only=True)
class IBRLConfig(GaussianReplayConfig):
    """Everything `dppo finetune` reads for IBRL (`model` is IBRLModelConfig)."""

    train: IBRLTrainConfig = setting()

    algorithm = "ibrl"
    needs_offline_data = True
    first_eval_after_exploration = 1  # upstream: itr > n_explore_steps

    @property
    def settings(self) -> IBRLSettings:
        t, m = self.train, self.model
        return IBRLSettings(**self.common_settings(), critic_num_update=t.critic_num_update,
                            update_freq=t.update_freq, n_critics=m.n_critics,
                            soft_action_sample=m.soft_action_sample,
                            soft_action_sample_beta=m.soft_action_sample_beta)
