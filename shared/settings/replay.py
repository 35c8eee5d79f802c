"""What the replay-buffer baselines (DIPO, DQL, IDQL, QSM: upstream cfg/gym/finetune/<env>/ft_<algo>_diffusion_mlp.yaml)
share: their common `train` keys, the typed view of them the driver takes, and the run-level checks.
Each algorithm's module subclasses these with its own keys (target rates, eta, action gradient, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.algorithms.offpolicy import minibatches_per_iteration
from shared.config.reader import non_negative, positive, setting, unit_interval
from shared.errors import ConfigError
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import CriticObsActConfig, CriticObsConfig
from shared.param_spec.families import DenoiserNetworkConfig
from shared.settings.model import LRSchedulerConfig
from shared.settings.regression import DiffusionRegressionConfig, DiffusionRegressionModelConfig


@dataclass(frozen=True, kw_only=True)
class ReplayTrainConfig:
    """The `train` keys DIPO, DQL, IDQL and QSM have in common (upstream's names and defaults)."""

    n_train_itr: int = setting(check=positive)
    n_steps: int = setting(check=positive)
    gamma: float = setting(check=unit_interval, doc="discount per policy step (one action chunk) of the TD target")
    actor_lr: float = setting(check=positive)
    actor_lr_scheduler: LRSchedulerConfig = setting()
    critic_lr: float = setting(check=positive)
    critic_lr_scheduler: LRSchedulerConfig = setting()
    save_model_freq: int = setting(check=positive)
    val_freq: int = setting(check=positive)
    batch_size: int = setting(check=positive)
    scale_reward_factor: float = setting(check=positive, doc="rewards are stored in the buffer times this")
    buffer_size: int = setting(check=positive, doc="replay capacity (transitions or policy steps: per algorithm)")
    replay_ratio: float = setting(check=positive, doc="minibatches per iteration = n_steps * n_envs / batch_size * it")
    n_critic_warmup_itr: int = setting(0, check=non_negative, doc="iterations that train the critic only")
    actor_weight_decay: float = setting(0.0, check=non_negative)
    critic_weight_decay: float = setting(0.0, check=non_negative)
    max_grad_norm: float | None = setting(None, check=positive, doc="actor gradient clipping (upstream: actor only)")
    force_train: bool = setting(False, doc="no evaluation iterations")
    n_eval_episodes: int = setting(10, check=positive)

    def __post_init__(self) -> None:
        for name in ("actor_lr_scheduler", "critic_lr_scheduler"):
            sched = getattr(self, name)
            if sched.cycle_mult != 1.0 or sched.gamma != 1.0:
                raise ConfigError(f"train.{name}: upstream fixes cycle_mult = gamma = 1 for these schedules")


@dataclass(frozen=True, kw_only=True)
class ReplaySettings:
    """Everything the replay loop needs besides the models (subclasses add the algorithm's keys)."""

    n_train_itr: int
    n_steps: int
    n_envs: int
    act_steps: int
    batch_size: int
    gamma: float
    actor_lr: float
    critic_lr: float
    actor_weight_decay: float
    critic_weight_decay: float
    actor_schedule: CosineWarmupRestarts
    critic_schedule: CosineWarmupRestarts
    max_grad_norm: float | None
    scale_reward_factor: float
    buffer_transitions: int
    replay_ratio: float
    n_critic_warmup_itr: int
    min_sampling_denoising_std: float
    denoising_steps: int
    val_freq: int
    save_model_freq: int
    n_eval_episodes: int = 10
    force_train: bool = False
    reset_at_iteration: bool = True
    reset_after_eval_iteration: bool = False

    @property
    def minibatches(self) -> int:
        """Minibatches per training iteration (upstream's num_batch)."""
        return minibatches_per_iteration(self.n_steps, self.n_envs, self.batch_size, self.replay_ratio)


def replay_settings_kwargs(cfg: ReplayRunConfig, buffer_transitions: int) -> dict[str, Any]:
    """The ReplaySettings fields of a replay config; `buffer_transitions` is the capacity in transitions
    (buffer_size, or buffer_size * n_envs where upstream's buffer holds whole policy steps)."""
    t, m = cfg.train, cfg.model
    return dict(
        n_train_itr=t.n_train_itr, n_steps=t.n_steps, n_envs=cfg.env.n_envs, act_steps=cfg.act_steps,
        batch_size=t.batch_size, gamma=t.gamma, actor_lr=t.actor_lr, critic_lr=t.critic_lr,
        actor_weight_decay=t.actor_weight_decay, critic_weight_decay=t.critic_weight_decay,
        actor_schedule=t.actor_lr_scheduler.schedule(t.actor_lr),
        critic_schedule=t.critic_lr_scheduler.schedule(t.critic_lr), max_grad_norm=t.max_grad_norm,
        scale_reward_factor=t.scale_reward_factor, buffer_transitions=buffer_transitions,
        replay_ratio=t.replay_ratio, n_critic_warmup_itr=t.n_critic_warmup_itr,
        min_sampling_denoising_std=m.min_sampling_denoising_std, denoising_steps=m.denoising_steps,
        val_freq=t.val_freq, save_model_freq=t.save_model_freq, n_eval_episodes=t.n_eval_episodes,
        force_train=t.force_train, reset_at_iteration=cfg.env.reset_at_iteration,
        reset_after_eval_iteration=cfg.env.reset_after_eval_iteration)


def check_q_critic(critic: CriticObsActConfig, key: str, obs_dim: int, cond_steps: int, action_dim: int,
                   act_steps: int) -> None:
    """A Q critic must take the flattened observation history and the executed chunk."""
    if critic.cond_dim != obs_dim * cond_steps:
        raise ConfigError(f"{key}.cond_dim={critic.cond_dim} must equal obs_dim * cond_steps = {obs_dim * cond_steps}")
    if critic.action_dim != action_dim or critic.action_steps != act_steps:
        raise ConfigError(f"{key} takes action_steps x action_dim = {critic.action_steps} x {critic.action_dim}; the "
                          f"executed chunks are act_steps x action_dim = {act_steps} x {action_dim}")


def check_v_critic(critic: CriticObsConfig, key: str, obs_dim: int, cond_steps: int) -> None:
    if critic.cond_dim != obs_dim * cond_steps:
        raise ConfigError(f"{key}.cond_dim={critic.cond_dim} must equal obs_dim * cond_steps = {obs_dim * cond_steps}")


@dataclass(frozen=True, kw_only=True)
class ReplayRunConfig(DiffusionRegressionConfig):
    """A replay-buffer baseline's run (subclasses set `train` and `model` and add their settings view)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.act_steps != self.horizon_steps:
            raise ConfigError(f"{self.algorithm.upper()} stores the executed chunks and trains the policy's whole "
                              f"chunks on them, so act_steps ({self.act_steps}) must equal horizon_steps "
                              f"({self.horizon_steps}), as upstream's configs have it")


@dataclass(frozen=True, kw_only=True)
class DoubleQModelConfig(DiffusionRegressionModelConfig):
    """The `model` section DIPO, DQL and QSM share (upstream's DIPODiffusion, DQLDiffusion, QSMDiffusion
    arguments): the policy `actor` and a double-Q `critic` (CriticObsAct)."""

    actor: DenoiserNetworkConfig
    critic: CriticObsActConfig

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.critic.double_q:
            raise ConfigError(f"model.critic.double_q must be true: {self.algorithm} trains two Q networks (upstream "
                              "takes the minimum of both)")
        self.diffusion()

    def policy_network(self) -> DenoiserNetworkConfig:
        return self.actor


@dataclass(frozen=True, kw_only=True)
class DoubleQRunConfig(ReplayRunConfig):
    """A DIPO, DQL or QSM run: its Q critic takes the observation history and the executed chunk."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_q_critic(self.model.critic, "model.critic", self.obs_dim, self.cond_steps, self.action_dim,
                       self.act_steps)

    @property
    def critic(self) -> CriticObsActConfig:
        return self.model.critic
