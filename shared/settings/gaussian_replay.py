"""What the off-policy fine-tuners of a Gaussian policy (SAC, RLPD, IBRL, Cal-QL: upstream
cfg/gym/finetune/<env>/{sac,rlpd,ibrl,calql}_mlp*.yaml) share: their common `train` and `model` keys, the
offline dataset section, and the typed view of them the driver takes. Each algorithm's module subclasses
these with its own keys.

Their loop is not DPPO's: an iteration is `n_steps` steps of one env (upstream: 1), the first
`n_explore_steps` iterations act uniformly at random, an evaluation iteration runs until `n_eval_episode`
episodes have ended (and only once exploration is over), and the actor's log-probabilities carry the
change of variables of a tanh squashing applied after sampling (`model.tanh_output`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.config.reader import non_negative, positive, setting, unit_interval
from shared.errors import ConfigError
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import CriticObsActConfig
from shared.param_spec.families import GaussianNetworkConfig
from shared.settings.model import LRSchedulerConfig
from shared.settings.run import PolicyRunConfig

EVAL_STEP_CAP = 100_000  # upstream's "large number" of policy steps an evaluation iteration may take


@dataclass(frozen=True, kw_only=True)
class OfflineDatasetConfig:
    """The `offline_dataset` section (upstream StitchedSequenceQLearningDataset's arguments)."""

    dataset_path: str = setting(doc="a train.npz of demonstrations (states, actions, rewards, terminals, traj_lengths)")
    horizon_steps: int = setting(check=positive)
    cond_steps: int = setting(1, check=positive)
    max_n_episodes: int = setting(10000, check=positive)
    discount_factor: float = setting(1.0, check=unit_interval, doc="discount of the Monte-Carlo returns")
    get_mc_return: bool = setting(False, doc="also compute each transition's discounted return-to-go (Cal-QL)")


@dataclass(frozen=True, kw_only=True)
class GaussianReplayTrainConfig:
    """The `train` keys SAC, RLPD, IBRL and Cal-QL have in common (upstream's names and defaults)."""

    n_train_itr: int = setting(check=positive)
    n_steps: int = setting(check=positive, doc="policy steps of each env per training iteration")
    gamma: float = setting(check=unit_interval, doc="discount per policy step (one action chunk)")
    actor_lr: float = setting(check=positive)
    critic_lr: float = setting(check=positive)
    actor_weight_decay: float = setting(0.0, check=non_negative)
    critic_weight_decay: float = setting(0.0, check=non_negative)
    actor_lr_scheduler: LRSchedulerConfig | None = setting(None, doc="none: a constant rate (upstream SAC)")
    critic_lr_scheduler: LRSchedulerConfig | None = setting(None, doc="none: a constant rate (upstream SAC)")
    save_model_freq: int = setting(check=positive)
    val_freq: int = setting(check=positive)
    log_freq: int = setting(1, check=positive, doc="training iterations between two metrics records")
    batch_size: int = setting(check=positive)
    target_ema_rate: float = setting(check=unit_interval, doc="Polyak rate of the target networks")
    scale_reward_factor: float = setting(1.0, check=positive, doc="rewards are stored in the buffer times this")
    buffer_size: int = setting(check=positive, doc="replay capacity in transitions")
    n_eval_episode: int = setting(10, check=positive, doc="an evaluation iteration runs until this many ended")
    n_explore_steps: int = setting(0, check=non_negative, doc="first iterations acting uniformly at random")
    force_train: bool = setting(False, doc="no evaluation iterations")

    def __post_init__(self) -> None:
        for name in ("actor_lr_scheduler", "critic_lr_scheduler"):
            sched = getattr(self, name)
            if sched is not None and (sched.cycle_mult != 1.0 or sched.gamma != 1.0):
                raise ConfigError(f"train.{name}: upstream fixes cycle_mult = gamma = 1 for these schedules")

    def schedule(self, which: str) -> CosineWarmupRestarts:
        """The actor's or critic's learning-rate schedule (constant without a scheduler section)."""
        lr = getattr(self, f"{which}_lr")
        sched = getattr(self, f"{which}_lr_scheduler")
        return constant_schedule(lr) if sched is None else sched.schedule(lr)


@dataclass(frozen=True, kw_only=True)
class EntropyTrainConfig(GaussianReplayTrainConfig):
    """The `train` keys of the maximum-entropy fine-tuners (SAC, RLPD, Cal-QL): a learned temperature."""

    target_entropy: float | None = setting(None, doc="default: -action_dim * act_steps (upstream's configs)")
    init_temperature: float = setting(1.0, check=positive, doc="initial entropy temperature alpha")


def constant_schedule(lr: float) -> CosineWarmupRestarts:
    return CosineWarmupRestarts(first_cycle_steps=1, max_lr=lr, min_lr=lr)


@dataclass(frozen=True, kw_only=True)
class GaussianReplayModelConfig:
    """The `model` keys the four share (upstream GaussianModel's arguments, an actor and a Q critic)."""

    actor: GaussianNetworkConfig
    critic: CriticObsActConfig
    horizon_steps: int = setting(check=positive)
    randn_clip_value: float = setting(10.0, check=positive, doc="sampled noise is clamped to +- this")
    tanh_output: bool = setting(False, doc="squash the sampled action with tanh (log-probability corrected)")

    algorithm = ""  # "SAC", ...: for messages
    ensemble = False  # RLPD, IBRL: `n_critics` single-head critics instead of one double-Q critic
    actor_dropout = False  # IBRL: the actor's dropout acts in its loss (acting and targets run without)

    def __post_init__(self) -> None:
        if not self.actor_dropout and getattr(self.actor, "dropout", 0.0) != 0.0:
            raise ConfigError(f"model.actor.dropout={self.actor.dropout}: {self.algorithm} here trains its actor "
                              "without dropout (only IBRL's actor takes it); use 0")
        if self.actor.horizon_steps != self.horizon_steps:
            raise ConfigError(f"model.actor.horizon_steps={self.actor.horizon_steps} disagrees with "
                              f"model.horizon_steps={self.horizon_steps}")
        # an ensemble's members are single Q networks whatever critic.double_q says (upstream's current configs
        # set it false; its older walker2d layout leaves the default)
        if not self.ensemble and not self.critic.double_q:
            raise ConfigError(f"model.critic.double_q must be true: {self.algorithm} takes the minimum of two Q "
                              "heads")


@dataclass(frozen=True, kw_only=True)
class GaussianReplaySettings:
    """Everything the loop and the updates need besides the models (subclasses add their keys)."""

    n_train_itr: int
    n_steps: int
    n_envs: int
    act_steps: int
    horizon_steps: int
    action_dim: int
    batch_size: int
    gamma: float
    actor_lr: float
    critic_lr: float
    actor_weight_decay: float
    critic_weight_decay: float
    actor_schedule: CosineWarmupRestarts
    critic_schedule: CosineWarmupRestarts
    target_ema_rate: float
    scale_reward_factor: float
    buffer_transitions: int
    n_explore_steps: int
    first_eval_itr: int  # evaluation iterations start here (upstream: once exploration is over)
    n_eval_episodes: int
    val_freq: int
    save_model_freq: int
    log_freq: int
    randn_clip_value: float
    tanh_output: bool
    force_train: bool = False
    reset_at_iteration: bool = True
    reset_after_eval_iteration: bool = False
    target_entropy: float = 0.0
    init_temperature: float = 1.0

    @property
    def chunk(self) -> int:
        """Ta * Da: the flattened action chunk the Gaussian actor outputs."""
        return self.horizon_steps * self.action_dim

    @property
    def eval_episodes(self) -> int:
        """An evaluation iteration runs until this many episodes have ended (upstream's n_eval_episode)."""
        return self.n_eval_episodes


@dataclass(frozen=True, kw_only=True)
class GaussianReplayConfig(PolicyRunConfig):
    """A run of one of the four (subclasses set `train` and `model` and add their settings view)."""

    offline_dataset_path: str | None = setting(None, doc="upstream's variable for offline_dataset.dataset_path")
    offline_dataset: OfflineDatasetConfig | None = setting(None, doc="the demonstrations RLPD, IBRL, Cal-QL replay")
    resume: str | None = None
    resume_fresh_optimizer: bool = setting(
        False, doc="resume from a checkpoint without optimizer state (weights only): fresh optimizers")

    algorithm = ""
    is_diffusion = False
    needs_offline_data = False
    first_eval_after_exploration = 0  # upstream: eval once itr > n_explore_steps (1) or >= (0)

    def __post_init__(self) -> None:
        super().__post_init__()
        m = self.model
        if self.act_steps != self.horizon_steps:
            raise ConfigError(f"{self.algorithm.upper()} stores the executed chunks and trains the policy's whole "
                              f"chunks on them, so act_steps ({self.act_steps}) must equal horizon_steps "
                              f"({self.horizon_steps}), as upstream's configs have it")
        if m.horizon_steps != self.horizon_steps:
            raise ConfigError(f"model.horizon_steps={m.horizon_steps} disagrees with horizon_steps="
                              f"{self.horizon_steps}")
        a = m.actor
        if a.action_dim != self.action_dim or a.cond_dim != self.obs_dim * self.cond_steps:
            raise ConfigError(f"model.actor maps cond_dim={a.cond_dim} to action_dim={a.action_dim}; this task has "
                              f"obs_dim * cond_steps = {self.obs_dim * self.cond_steps}, action_dim="
                              f"{self.action_dim}")
        c = m.critic
        if c.cond_dim != self.obs_dim * self.cond_steps:
            raise ConfigError(f"model.critic.cond_dim={c.cond_dim} must equal obs_dim * cond_steps = "
                              f"{self.obs_dim * self.cond_steps}")
        if c.action_dim != self.action_dim or c.action_steps != self.act_steps:
            raise ConfigError(f"model.critic takes action_steps x action_dim = {c.action_steps} x {c.action_dim}; "
                              f"the executed chunks are act_steps x action_dim = {self.act_steps} x "
                              f"{self.action_dim}")
        if self.needs_offline_data and self.offline_dataset is None:
            raise ConfigError(f"{self.algorithm.upper()} replays demonstrations: the config needs an "
                              "'offline_dataset' section (dataset_path: a train.npz)")
        if self.offline_dataset is not None and self.offline_dataset.horizon_steps != self.horizon_steps:
            raise ConfigError(f"offline_dataset.horizon_steps={self.offline_dataset.horizon_steps} must equal "
                              f"horizon_steps={self.horizon_steps}")

    def common_settings(self) -> dict[str, Any]:
        """The GaussianReplaySettings fields of this config."""
        t, m = self.train, self.model
        entropy = getattr(t, "target_entropy", None)
        return dict(
            n_train_itr=t.n_train_itr, n_steps=t.n_steps, n_envs=self.env.n_envs, act_steps=self.act_steps,
            horizon_steps=self.horizon_steps, action_dim=self.action_dim, batch_size=t.batch_size, gamma=t.gamma,
            actor_lr=t.actor_lr, critic_lr=t.critic_lr, actor_weight_decay=t.actor_weight_decay,
            critic_weight_decay=t.critic_weight_decay, actor_schedule=t.schedule("actor"),
            critic_schedule=t.schedule("critic"), target_ema_rate=t.target_ema_rate,
            scale_reward_factor=t.scale_reward_factor, buffer_transitions=t.buffer_size,
            n_explore_steps=t.n_explore_steps, first_eval_itr=t.n_explore_steps + self.first_eval_after_exploration,
            n_eval_episodes=t.n_eval_episode, val_freq=t.val_freq, save_model_freq=t.save_model_freq,
            log_freq=t.log_freq, randn_clip_value=m.randn_clip_value, tanh_output=m.tanh_output,
            force_train=t.force_train, reset_at_iteration=self.env.reset_at_iteration,
            reset_after_eval_iteration=self.env.reset_after_eval_iteration,
            target_entropy=float(-self.action_dim * self.act_steps if entropy is None else entropy),
            init_temperature=float(getattr(t, "init_temperature", 1.0)))

    @property
    def critic(self) -> CriticObsActConfig:
        return self.model.critic

    @property
    def log_init_temperature(self) -> float:
        return math.log(getattr(self.train, "init_temperature", 1.0))
