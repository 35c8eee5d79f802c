"""An advantage-weighted regression fine-tuning config (upstream cfg/gym/finetune/<env>/ft_awr_diffusion_mlp.yaml),
read once, and AWRSettings, the typed view the twins and the driver take.

AWR (upstream AWRDiffusion / TrainAWRDiffusionAgent) keeps a replay buffer of executed action chunks,
fits a state-value critic to TD(lambda) targets, and trains the diffusion policy by denoising regression
on buffered chunks weighted by exp(beta * normalised advantage), clipped at max_adv_weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.algorithms.offpolicy import minibatches_per_iteration
from shared.config.reader import non_negative, positive, setting, unit_interval
from shared.errors import ConfigError
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import CriticObsConfig
from shared.param_spec.families import DenoiserNetworkConfig
from shared.settings.regression import DiffusionRegressionConfig, DiffusionRegressionModelConfig
from shared.settings.replay import ReplayTrainConfig


@dataclass(frozen=True, kw_only=True)
class AWRTrainConfig(ReplayTrainConfig):
    """The `train` section of an AWR config: the replay baselines' common keys (upstream's names and
    defaults) plus AWR's own."""

    gamma: float = setting(check=unit_interval, doc="upstream reads it but its TD targets use 0.99 (td_gamma)")
    beta: float = setting(check=non_negative, doc="weight = exp(beta * normalised advantage)")
    max_adv_weight: float = setting(check=positive, doc="weights are clipped at this value")
    critic_update_ratio: int = setting(check=positive, doc="critic minibatches = actor minibatches // this")
    td_gamma: float | None = setting(
        None, check=unit_interval, doc="discount of the TD(lambda) targets; null = upstream's fixed 0.99")
    critic_loss_all_pairs: bool = setting(
        True, doc="upstream's critic loss: V (B, 1) minus targets (B,) broadcasts to all B x B pairs; false: "
                  "per row")
    critic_rows_first_steps: bool = setting(
        True, doc="upstream draws critic rows among the first S of the S x n_envs buffer rows; false: all rows")


@dataclass(frozen=True, kw_only=True)
class AWRModelConfig(DiffusionRegressionModelConfig):
    """The `model` section of an AWR config (upstream AWRDiffusion's arguments)."""

    actor: DenoiserNetworkConfig
    critic: CriticObsConfig

    algorithm = "AWR"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.critic.cond_dim != self.obs_dim * self.cond_steps:
            raise ConfigError(f"model.critic.cond_dim={self.critic.cond_dim} must equal obs_dim * cond_steps "
                              f"= {self.obs_dim * self.cond_steps}")
        self.diffusion()

    def policy_network(self) -> DenoiserNetworkConfig:
        return self.actor


@dataclass(frozen=True)
class AWRSettings:
    """Everything the AWR loop and its updates need besides the models."""

    n_train_itr: int
    n_steps: int
    n_envs: int
    batch_size: int
    actor_lr: float
    critic_lr: float
    actor_weight_decay: float
    critic_weight_decay: float
    actor_schedule: CosineWarmupRestarts
    critic_schedule: CosineWarmupRestarts
    max_grad_norm: float | None
    beta: float
    max_adv_weight: float
    scale_reward_factor: float
    buffer_size: int
    replay_ratio: float
    critic_update_ratio: int
    n_critic_warmup_itr: int
    td_gamma: float
    critic_loss_all_pairs: bool
    critic_rows_first_steps: bool
    min_sampling_denoising_std: float
    val_freq: int
    save_model_freq: int
    n_eval_episodes: int = 10
    force_train: bool = False
    reset_at_iteration: bool = True
    reset_after_eval_iteration: bool = False

    @property
    def actor_batches(self) -> int:
        """Actor minibatches per training iteration (upstream's num_batch)."""
        return minibatches_per_iteration(self.n_steps, self.n_envs, self.batch_size, self.replay_ratio)


@dataclass(frozen=True, kw_only=True)
class AWRConfig(DiffusionRegressionConfig):
    """Everything `dppo finetune` reads for AWR (`model` is AWRModelConfig)."""

    train: AWRTrainConfig = setting()

    algorithm = "awr"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.act_steps != self.horizon_steps:
            raise ConfigError(f"AWR stores the executed actions and regresses whole chunks on them, so act_steps "
                              f"({self.act_steps}) must equal horizon_steps ({self.horizon_steps}), as upstream")

    @property
    def critic(self) -> CriticObsConfig:
        return self.model.critic

    @property
    def awr(self) -> AWRSettings:
        t, m = self.train, self.model
        return AWRSettings(
            n_train_itr=t.n_train_itr, n_steps=t.n_steps, n_envs=self.env.n_envs, batch_size=t.batch_size,
            actor_lr=t.actor_lr, critic_lr=t.critic_lr, actor_weight_decay=t.actor_weight_decay,
            critic_weight_decay=t.critic_weight_decay, actor_schedule=t.actor_lr_scheduler.schedule(t.actor_lr),
            critic_schedule=t.critic_lr_scheduler.schedule(t.critic_lr), max_grad_norm=t.max_grad_norm,
            beta=t.beta, max_adv_weight=t.max_adv_weight, scale_reward_factor=t.scale_reward_factor,
            buffer_size=t.buffer_size, replay_ratio=t.replay_ratio, critic_update_ratio=t.critic_update_ratio,
            n_critic_warmup_itr=t.n_critic_warmup_itr, td_gamma=0.99 if t.td_gamma is None else t.td_gamma,
            critic_loss_all_pairs=t.critic_loss_all_pairs, critic_rows_first_steps=t.critic_rows_first_steps,
            min_sampling_denoising_std=m.min_sampling_denoising_std, val_freq=t.val_freq,
            save_model_freq=t.save_model_freq, n_eval_episodes=t.n_eval_episodes, force_train=t.force_train,
            reset_at_iteration=self.env.reset_at_iteration,
            reset_after_eval_iteration=self.env.reset_after_eval_iteration)
