"""A PPO fine-tuning config (upstream cfg/gym/finetune/<env>/{ft_ppo,ppo}_*_mlp.yaml), read once,
and the typed views the twins and the driver take: PPOSettings (the PPO loop and loss) and
DPPOSettings (the denoising MDP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config.reader import non_negative, positive, setting, unit_interval
from shared.diffusion.eta import EtaConfig
from shared.errors import ConfigError
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec.families import CriticNetworkConfig, GaussianNetworkConfig
from shared.settings.exact import ExactDiffusionPPOModelConfig
from shared.settings.model import (
    DiffusionConfig,
    DiffusionPPOModelConfig,
    LRSchedulerConfig,
    StdScheduleConfig,
)
from shared.settings.run import PolicyRunConfig


@dataclass(frozen=True)
class PPOTrainConfig:
    """The `train` section of a PPO fine-tuning config (upstream's names and defaults)."""

    n_train_itr: int = setting(check=positive)
    n_steps: int = setting(check=positive)
    gamma: float = setting(check=unit_interval)
    actor_lr: float = setting(check=positive)
    actor_lr_scheduler: LRSchedulerConfig = setting()
    critic_lr: float = setting(check=positive)
    critic_lr_scheduler: LRSchedulerConfig = setting()
    save_model_freq: int = setting(check=positive)
    val_freq: int = setting(check=positive)
    batch_size: int = setting(check=positive)
    update_epochs: int = setting(check=positive)
    reward_scale_running: bool = setting()
    n_critic_warmup_itr: int = setting(0, check=non_negative)
    actor_weight_decay: float = setting(0.0, check=non_negative)
    critic_weight_decay: float = setting(0.0, check=non_negative)
    force_train: bool = setting(False, doc="no evaluation iterations")
    reward_scale_const: float = 1.0
    reward_scale_gamma: float | None = setting(
        None, check=unit_interval,
        doc="discount of the running reward scaler; null = upstream's fixed 0.99 whatever train.gamma is")
    gae_lambda: float = setting(0.95, check=unit_interval)
    vf_coef: float = setting(0.0, check=non_negative)
    ent_coef: float = 0.0
    target_kl: float | None = setting(None, check=positive)
    max_grad_norm: float | None = setting(None, check=positive)
    use_bc_loss: bool = False
    bc_loss_coeff: float = setting(0.0, check=non_negative)
    logprob_batch_size: int = setting(10000, check=positive, doc="rows per chunk when scoring a rollout")
    n_eval_episodes: int = setting(10, check=positive)
    eta_lr: float | None = setting(None, check=positive)
    eta_weight_decay: float = setting(0.0, check=non_negative)
    eta_lr_scheduler: LRSchedulerConfig | None = None
    eta_update_interval: int = setting(1, check=positive)
    augment: bool = setting(False, doc="image configs: shift the rollout's camera frames once, before scoring and "
                                       "the updates (upstream's RandomShiftsAug, pad 4, one draw per frame)")
    grad_accumulate: int = setting(1, check=positive, doc="minibatches whose gradients are summed before one "
                                                          "optimizer step (upstream's image agents)")

    def __post_init__(self) -> None:
        # one scheduler step per iteration; the TF twin tabulates one step past the last iteration
        for key in ("actor_lr_scheduler", "critic_lr_scheduler", "eta_lr_scheduler"):
            if getattr(self, key) is not None:
                getattr(self, key).check_steps(self.n_train_itr + 1, key)


def minibatches_per_epoch(n_steps: int, n_envs: int, batch_size: int) -> int:
    """Minibatches of a PPO update epoch over the rollout's n_steps x n_envs rows: the remainder is skipped (as
    upstream), at least one."""
    return max(1, n_steps * n_envs // batch_size)


@dataclass(frozen=True)
class PPOSettings:
    """Everything the PPO loop and loss need besides the models (defaults are upstream's)."""

    n_train_itr: int
    n_steps: int
    n_envs: int
    gamma: float
    gae_lambda: float
    batch_size: int
    update_epochs: int
    vf_coef: float
    ent_coef: float
    target_kl: float | None
    max_grad_norm: float | None
    n_critic_warmup_itr: int
    reward_scale_running: bool
    reward_scale_const: float
    val_freq: int
    save_model_freq: int
    n_eval_episodes: int
    actor_lr: float
    critic_lr: float
    actor_weight_decay: float
    critic_weight_decay: float
    actor_schedule: CosineWarmupRestarts
    critic_schedule: CosineWarmupRestarts
    clip_ploss_coef: float
    clip_vloss_coef: float | None
    norm_adv: bool
    clip_advantage_lower_quantile: float
    clip_advantage_upper_quantile: float
    reward_scale_gamma: float | None = None  # None: upstream's fixed 0.99 (its scaler is built without train.gamma)
    force_train: bool = False
    reset_at_iteration: bool = True  # upstream's env.reset_at_iteration default
    reset_after_eval_iteration: bool = False
    logprob_batch_size: int = 10000
    eta_lr: float = 0.0  # the eta optimizer's (model.learn_eta only)
    eta_weight_decay: float = 0.0
    eta_schedule: CosineWarmupRestarts | None = None
    eta_update_interval: int = 1  # eta steps on minibatches whose index within the epoch is a multiple of this
    augment: bool = False  # shift the rollout's camera frames once before scoring (image configs)
    grad_accumulate: int = 1  # minibatches summed per optimizer step

    @property
    def batches_per_epoch(self) -> int:
        return minibatches_per_epoch(self.n_steps, self.n_envs, self.batch_size)


@dataclass(frozen=True)
class DPPOSettings:
    """DPPO's own knobs (the two-level MDP), upstream's names and defaults."""

    ft_denoising_steps: int
    gamma_denoising: float
    clip_ploss_coef_base: float
    clip_ploss_coef_rate: float
    min_sampling_denoising_std: float
    min_logprob_denoising_std: float
    reward_horizon: int  # = act_steps: only executed actions carry the policy gradient
    use_bc_loss: bool
    bc_loss_coeff: float
    eta: EtaConfig | None = None  # DDIM eta (model.eta); None: eta = 0
    learn_eta: bool = False
    ft_denoising_steps_d: int = 0  # anneal: every ft_denoising_steps_t iterations, K -= ft_denoising_steps_d
    ft_denoising_steps_t: int = 0
    # model.min_sampling_denoising_std given as a schedule: its value after k iterations (k = 0 first)
    min_sampling_std_schedule: CosineWarmupRestarts | None = None

    def min_sampling_std(self, iterations: int) -> float:
        """The exploration std floor after `iterations` scheduler steps (one per iteration, as upstream)."""
        if self.min_sampling_std_schedule is None:
            return self.min_sampling_denoising_std
        return self.min_sampling_std_schedule(iterations)


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(PolicyRunConfig):
    """Everything `dppo finetune` reads. `model` is DiffusionPPOModelConfig (DPPO) or
    GaussianPPOModelConfig (the Gaussian baseline)."""

    train: PPOTrainConfig = setting()
    resume: str | None = None
    resume_fresh_optimizer: bool = setting(
        False, doc="resume from a checkpoint without optimizer state (weights only): fresh AdamW, schedules kept")
    use_ddim: bool | None = None
    ddim_steps: int | None = setting(None, check=positive)

    def __post_init__(self) -> None:
        super().__post_init__()
        std = getattr(self.model, "min_sampling_denoising_std", None)
        if isinstance(std, StdScheduleConfig):
            std.check_steps(self.train.n_train_itr + 1, "model.min_sampling_denoising_std")
        if self.is_diffusion and self.model.learn_eta and (self.train.eta_lr is None
                                                            or self.train.eta_lr_scheduler is None):
            raise ConfigError("model.learn_eta needs train.eta_lr and train.eta_lr_scheduler (as upstream)")
        if (self.model.horizon_steps or self.horizon_steps) != self.horizon_steps:
            raise ConfigError(f"model.horizon_steps={self.model.horizon_steps} disagrees with "
                              f"horizon_steps={self.horizon_steps}")
        t = self.train
        minibatches = minibatches_per_epoch(t.n_steps, self.env.n_envs, t.batch_size)
        if t.grad_accumulate > minibatches:  # the optimizers step after the k-th minibatch of an epoch: never
            raise ConfigError(
                f"train.grad_accumulate={t.grad_accumulate} is more than the {minibatches} minibatches of an update "
                f"epoch (train.n_steps={t.n_steps} x env.n_envs={self.env.n_envs} // train.batch_size="
                f"{t.batch_size}): no optimizer would ever step; lower train.grad_accumulate or train.batch_size")
        if self.is_exact:
            self.model.check_train(self.train)
        if self.is_diffusion:
            for key in ("obs_dim", "action_dim", "cond_steps", "denoising_steps", "ft_denoising_steps", "use_ddim",
                        "ddim_steps"):
                top = getattr(self, key)
                if top is not None and top != getattr(self.model, key):
                    raise ConfigError(f"config key '{key}'={top} disagrees with "
                                      f"'model.{key}'={getattr(self.model, key)}")

    @property
    def is_diffusion(self) -> bool:
        return isinstance(self.model, DiffusionPPOModelConfig)

    @property
    def is_exact(self) -> bool:
        """DPPO scored by the exact likelihood of the final chunk (upstream PPOExactDiffusion)."""
        return isinstance(self.model, ExactDiffusionPPOModelConfig)

    @property
    def algorithm(self) -> str:
        """Its entry in shared/settings/algorithms.py, recorded in checkpoints: ppo (DPPO, Gaussian PPO) or
        ppo_exact."""
        return "ppo_exact" if self.is_exact else "ppo"

    @property
    def diffusion(self) -> DiffusionConfig:
        if not self.is_diffusion:
            raise ConfigError("this is a Gaussian policy config; a diffusion policy was expected")
        return self.model.diffusion()

    @property
    def critic(self) -> CriticNetworkConfig:
        return self.model.critic

    @property
    def gaussian_actor(self) -> GaussianNetworkConfig:
        if self.is_diffusion:
            raise ConfigError("this is a diffusion policy config; a Gaussian policy was expected")
        return self.model.actor

    @property
    def ppo(self) -> PPOSettings:
        t, m = self.train, self.model
        return PPOSettings(
            n_train_itr=t.n_train_itr, n_steps=t.n_steps, n_envs=self.env.n_envs, gamma=t.gamma,
            gae_lambda=t.gae_lambda, batch_size=t.batch_size, update_epochs=t.update_epochs, vf_coef=t.vf_coef,
            ent_coef=t.ent_coef, target_kl=t.target_kl, max_grad_norm=t.max_grad_norm,
            n_critic_warmup_itr=t.n_critic_warmup_itr, reward_scale_running=t.reward_scale_running,
            reward_scale_const=t.reward_scale_const,
            reward_scale_gamma=t.reward_scale_gamma,
            val_freq=t.val_freq, force_train=t.force_train, save_model_freq=t.save_model_freq,
            n_eval_episodes=t.n_eval_episodes, reset_at_iteration=self.env.reset_at_iteration,
            reset_after_eval_iteration=self.env.reset_after_eval_iteration,
            logprob_batch_size=t.logprob_batch_size, actor_lr=t.actor_lr, critic_lr=t.critic_lr,
            actor_weight_decay=t.actor_weight_decay, critic_weight_decay=t.critic_weight_decay,
            actor_schedule=t.actor_lr_scheduler.schedule(t.actor_lr),
            critic_schedule=t.critic_lr_scheduler.schedule(t.critic_lr),
            clip_ploss_coef=m.clip_ploss_coef, clip_vloss_coef=m.clip_vloss_coef, norm_adv=m.norm_adv,
            clip_advantage_lower_quantile=getattr(m, "clip_advantage_lower_quantile", 0.0),
            clip_advantage_upper_quantile=getattr(m, "clip_advantage_upper_quantile", 1.0),
            augment=t.augment, grad_accumulate=t.grad_accumulate, **self._eta_training())

    def _eta_training(self) -> dict[str, Any]:
        """The eta optimizer's settings (read only with model.learn_eta, as upstream)."""
        t = self.train
        if not (self.is_diffusion and self.model.learn_eta):
            return {}
        return {"eta_lr": t.eta_lr, "eta_weight_decay": t.eta_weight_decay,
                "eta_schedule": t.eta_lr_scheduler.schedule(t.eta_lr), "eta_update_interval": t.eta_update_interval}

    @property
    def dppo(self) -> DPPOSettings:
        m, t = self.model, self.train
        if not self.is_diffusion:
            raise ConfigError("DPPO settings need a diffusion policy config")
        std = m.min_sampling_denoising_std
        schedule = None if isinstance(std, float) else std.schedule(std.max_lr)
        return DPPOSettings(
            ft_denoising_steps=m.ft_denoising_steps, gamma_denoising=m.gamma_denoising,
            clip_ploss_coef_base=m.clip_ploss_coef_base, clip_ploss_coef_rate=m.clip_ploss_coef_rate,
            min_sampling_denoising_std=std if schedule is None else schedule(0),
            min_logprob_denoising_std=m.min_logprob_denoising_std, reward_horizon=self.act_steps,
            use_bc_loss=t.use_bc_loss, bc_loss_coeff=t.bc_loss_coeff, eta=m.eta_config(), learn_eta=m.learn_eta,
            ft_denoising_steps_d=m.ft_denoising_steps_d, ft_denoising_steps_t=m.ft_denoising_steps_t,
            min_sampling_std_schedule=schedule)

    def noise_steps(self) -> int:
        """Reverse steps of one sampling chain (DDIM or DDPM)."""
        return self.model.diffusion().num_sampling_steps
