"""An RLPD fine-tuning config (upstream cfg/gym/finetune/<env>/rlpd_mlp.yaml), read once, and RLPDSettings.

RLPD (upstream RLPD_Gaussian / TrainRLPDAgent: reinforcement learning with prior data) is SAC with an
ensemble of `n_critics` layer-normed Q networks, TD targets from the minimum of two target members drawn at
random (plus the entropy term when backup_entropy), every minibatch half offline demonstrations and half
online transitions, and `critic_num_update` critic steps per env step (a high update-to-data ratio); the
actor maximises the ensemble's mean Q minus alpha log pi once per iteration.

upstream's walker2d `ft_rlpd_mlp.yaml` is an older layout its current agent cannot read (no
critic_num_update, n_explore_steps, target_entropy or init_temperature; `replay_ratio`,
`entropy_temperature` and `n_critic_warmup_itr` instead). It is read here with `replay_ratio` as the number
of critic steps per iteration, `entropy_temperature` as the initial temperature, and the actor held still for
the first `n_critic_warmup_itr` iterations.
"""

from __future__ import annotations

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
class RLPDTrainConfig(EntropyTrainConfig):
    """The `train` section of an RLPD config (upstream's names; the older walker2d keys as aliases)."""

    critic_num_update: int | None = setting(None, check=positive, doc="critic steps per training iteration")
    replay_ratio: int | None = setting(None, check=positive, doc="older layout's name of critic_num_update")
    entropy_temperature: float | None = setting(None, check=positive, doc="older layout's init_temperature")
    n_critic_warmup_itr: int = setting(0, check=non_negative, doc="iterations that train the critics only")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.critic_num_update is None and self.replay_ratio is None:
            raise ConfigError("missing required config key 'train.critic_num_update'")

    @property
    def critic_updates(self) -> int:
        return int(self.critic_num_update if self.critic_num_update is not None else self.replay_ratio)

    @property
    def temperature(self) -> float:
        return self.entropy_temperature if self.entropy_temperature is not None else self.init_temperature


@dataclass(frozen=True, kw_only=True)
class RLPDModelConfig(GaussianReplayModelConfig):
    """The `model` section of an RLPD config (upstream RLPD_Gaussian's arguments)."""

    n_critics: int = setting(check=positive, doc="ensemble size (two members are drawn for each TD target)")
    backup_entropy: bool = setting(False, doc="add gamma (1 - terminated) alpha (-log pi(a'|s')) to the targets")

    algorithm = "RLPD"
    ensemble = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_critics < 2:
            raise ConfigError(f"model.n_critics={self.n_critics}: the TD target takes the minimum of two members")


@dataclass(frozen=True, kw_only=True)
class RLPDSettings(GaussianReplaySettings):
    critic_num_update: int
    n_critics: int
    backup_entropy: bool
    n_critic_warmup_itr: int


@dataclass(frozen=True, kw_only=True)
class RLPDConfig(GaussianReplayConfig):
    """Everything `dppo finetune` reads for RLPD (`model` is RLPDModelConfig)."""

    train: RLPDTrainConfig = setting()

    algorithm = "rlpd"
    needs_offline_data = True
    first_eval_after_exploration = 0  # upstream: itr >= n_explore_steps

    @property
    def settings(self) -> RLPDSettings:
        t, m = self.train, self.model
        common = self.common_settings()
        common["init_temperature"] = float(t.temperature)
        return RLPDSettings(**common, critic_num_update=t.critic_updates, n_critics=m.n_critics,
                            backup_entropy=m.backup_entropy, n_critic_warmup_itr=t.n_critic_warmup_itr)
