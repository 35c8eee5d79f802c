"""A Cal-QL config (upstream cfg/gym/pretrain/<env>/calql_mlp_offline.yaml, then
cfg/gym/finetune/<env>/calql_mlp_online.yaml), read once, and CalQLSettings.

Cal-QL (upstream CalQL_Gaussian / TrainCalQLAgent: calibrated conservative Q-learning) is SAC with a
conservative regulariser on its double-Q critic: the log-sum-exp of Q over random and policy actions (the
policy's bounded below by the Monte-Carlo return-to-go, the calibration) minus Q on the data, weighted by
cql_min_q_weight; TD targets take the best of cql_n_actions sampled next actions. Offline (train_online
false) every iteration is num_update steps on the demonstrations; online each iteration collects
n_episode_per_epoch whole episodes and takes that many steps times online_utd_ratio, half offline, half
online.

Upstream's online loop takes len(reward_trajs) updates per iteration, which is the size of its step
buffer (100000), not the steps collected; this project takes steps collected x online_utd_ratio (the
key upstream reads and never uses), which is what its comment says ("assume one env").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.config.reader import non_negative, positive, setting
from shared.errors import ConfigError
from shared.settings.gaussian_replay import (
    EntropyTrainConfig,
    GaussianReplayConfig,
    GaussianReplayModelConfig,
    GaussianReplaySettings,
)


@dataclass(frozen=True, kw_only=True)
class CalQLTrainConfig(EntropyTrainConfig):
    """The `train` section of a Cal-QL config (upstream's names)."""

    train_online: bool = setting(doc="false: offline pre-training on the demonstrations only")
    n_random_actions: int = setting(check=positive, doc="uniform random actions per state in the regulariser")
    num_update: int = setting(check=positive, doc="offline: updates per iteration")
    n_episode_per_epoch: int = setting(1, check=positive, doc="online: whole episodes collected per iteration")
    online_utd_ratio: float = setting(1.0, check=positive, doc="online: updates per collected step")
    automatic_entropy_tuning: bool = setting(True, doc="learn the temperature")


@dataclass(frozen=True, kw_only=True)
class CalQLModelConfig(GaussianReplayModelConfig):
    """The `model` section of a Cal-QL config (upstream CalQL_Gaussian's arguments)."""

    cql_min_q_weight: float = setting(5.0, check=non_negative, doc="weight of the conservative regulariser")
    cql_n_actions: int = setting(10, check=positive, doc="next actions sampled per TD target (the best is taken)")
    cql_clip_diff_min: float = setting(-math.inf, doc="clamp of the regulariser's per-row difference")
    cql_clip_diff_max: float = setting(math.inf, doc="upper clamp of the regulariser's per-row difference")

    algorithm = "Cal-QL"


@dataclass(frozen=True, kw_only=True)
class CalQLSettings(GaussianReplaySettings):
    train_online: bool
    n_random_actions: int
    num_update: int
    n_episode_per_epoch: int
    online_utd_ratio: float
    automatic_entropy_tuning: bool
    cql_min_q_weight: float
    cql_n_actions: int
    cql_clip_diff_min: float
    cql_clip_diff_max: float
    return_discount: float  # of the Monte-Carlo returns-to-go (offline_dataset.discount_factor)


@dataclass(frozen=True, kw_only=True)
class CalQLConfig(GaussianReplayConfig):
    """Everything `dppo finetune` reads for Cal-QL, offline or online (`model` is CalQLModelConfig)."""

    train: CalQLTrainConfig = setting()

    algorithm = "calql"
    needs_offline_data = True
    first_eval_after_exploration = 0  # upstream: itr >= n_explore_steps

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train.train_online and self.env.n_envs != 1:
            raise ConfigError(f"env.n_envs={self.env.n_envs}: online Cal-QL collects whole episodes of one env "
                              "(upstream's loop supports a single env)")

    @property
    def settings(self) -> CalQLSettings:
        t, m = self.train, self.model
        assert self.offline_dataset is not None
        return CalQLSettings(**self.common_settings(), train_online=t.train_online,
                             n_random_actions=t.n_random_actions, num_update=t.num_update,
                             n_episode_per_epoch=t.n_episode_per_epoch, online_utd_ratio=t.online_utd_ratio,
                             automatic_entropy_tuning=t.automatic_entropy_tuning,
                             cql_min_q_weight=m.cql_min_q_weight, cql_n_actions=m.cql_n_actions,
                             cql_clip_diff_min=m.cql_clip_diff_min, cql_clip_diff_max=m.cql_clip_diff_max,
                             return_discount=self.offline_dataset.discount_factor)
