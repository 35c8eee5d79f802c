"""Model sections of a config: the diffusion policy (upstream DiffusionModel's arguments), the
DPPO and Gaussian PPO models (upstream PPODiffusion / PPO_Gaussian arguments) and the networks.

The network dataclasses themselves live in shared/param_spec/ beside the parameter names they define
(the network-family registry, shared/param_spec/families.py); a network section is read as the family
of its role its `_target_` names (the role's first family when it names none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config.reader import SettingError, non_negative, one_of, positive, setting, unit_interval
from shared.diffusion.eta import EtaConfig, eta_config
from shared.errors import ConfigError
from shared.param_spec.families import CriticNetworkConfig, DenoiserNetworkConfig, GaussianNetworkConfig


def _steps_check(denoising_steps: int, use_ddim: bool, ddim_steps: int | None) -> None:
    if denoising_steps < 1:
        raise SettingError("denoising_steps", f"must be >= 1, got {denoising_steps}")
    if use_ddim and not (ddim_steps and 1 <= ddim_steps <= denoising_steps):
        raise SettingError("ddim_steps", f"must be in [1, denoising_steps={denoising_steps}] with use_ddim: true, "
                                         f"got {ddim_steps}")


def _network_matches(net: Any, action_dim: int, horizon_steps: int, cond_dim: int, where: str) -> None:
    net_horizon = getattr(net, "horizon_steps", horizon_steps)  # a convolutional denoiser takes any horizon ...
    check_horizon = getattr(net, "check_horizon", None)
    if check_horizon is not None:  # ... its down/up-sampling allows (Unet1D: a multiple of 2^(levels - 1))
        check_horizon(horizon_steps)
    if net.action_dim != action_dim or net_horizon != horizon_steps:
        raise ConfigError(f"{where} (action_dim={net.action_dim}, horizon_steps={net_horizon}) disagrees "
                          f"with the model (action_dim={action_dim}, horizon_steps={horizon_steps})")
    if net.cond_dim != cond_dim:
        raise ConfigError(f"{where}.cond_dim={net.cond_dim} must equal obs_dim * cond_steps = {cond_dim}")


@dataclass(frozen=True)
class DiffusionConfig:
    """Upstream DiffusionModel's arguments: the `model` section of a pre-training or eval config."""

    network: DenoiserNetworkConfig
    horizon_steps: int = setting(check=positive)
    obs_dim: int = setting(check=positive)
    action_dim: int = setting(check=positive)
    cond_steps: int = setting(1, check=positive)
    denoising_steps: int = setting(100, check=positive)
    predict_epsilon: bool = True
    denoised_clip_value: float | None = setting(1.0, check=positive)
    randn_clip_value: float = setting(10.0, check=positive)
    final_action_clip_value: float | None = setting(None, check=positive)
    eps_clip_value: float | None = setting(None, check=positive, doc="DDIM only: clamp of the re-derived epsilon")
    use_ddim: bool = False
    ddim_discretize: str = setting("uniform", check=one_of("uniform"))
    ddim_steps: int | None = setting(None, check=positive)

    def __post_init__(self) -> None:
        _network_matches(self.network, self.action_dim, self.horizon_steps, self.obs_dim * self.cond_steps,
                         "model.network")
        _steps_check(self.denoising_steps, self.use_ddim, self.ddim_steps)

    @property
    def num_sampling_steps(self) -> int:
        return self.ddim_steps if self.use_ddim else self.denoising_steps

    @property
    def condition_once_per_row(self) -> bool:
        """Whether scoring K steps of a chain may encode each observation once and reuse the features (the
        denoiser's `condition` has no dropout, so the K encodings upstream computes are equal); with dropout each
        step draws its own mask, as upstream's repeated rows do. For image policies this is most of the update:
        the ViT runs on B rows instead of B x K."""
        return getattr(self.network, "dropout", 0.0) == 0.0


@dataclass(frozen=True)
class GaussianModelConfig:
    """Upstream GaussianModel's arguments (a Gaussian policy's eval config)."""

    network: GaussianNetworkConfig
    horizon_steps: int = setting(check=positive)
    randn_clip_value: float = setting(10.0, check=positive)
    tanh_output: bool = False

    def __post_init__(self) -> None:
        _no_tanh_after_sampling(self.tanh_output)


def _no_tanh_after_sampling(tanh_output: bool) -> None:
    if tanh_output:
        raise ConfigError("model.tanh_output (squashing after sampling, upstream's SAC/RLPD path) is not supported; "
                          "use model.actor.tanh_output")


@dataclass(frozen=True)
class LRSchedulerConfig:
    """Cosine annealing with linear warm-up and restarts (upstream CosineAnnealingWarmupRestarts)."""

    first_cycle_steps: int = setting(check=positive)
    warmup_steps: int = setting(0, check=non_negative)
    min_lr: float = setting(0.001, check=non_negative)
    cycle_mult: float = setting(1.0, check=positive)
    gamma: float = setting(1.0, check=positive)

    def __post_init__(self) -> None:
        if self.warmup_steps >= self.first_cycle_steps:
            raise SettingError("warmup_steps", f"must be < first_cycle_steps={self.first_cycle_steps}, "
                                              f"got {self.warmup_steps}")

    def check_steps(self, steps: int, key: str) -> None:
        """Refuse a cycle_mult that shrinks a cycle to no longer than the warm-up within the `steps`
        scheduler steps a run takes (the schedule would fail there, mid-run). key: this section's."""
        from shared.lr_schedule import CosineWarmupRestarts

        if self.cycle_mult >= 1:  # cycles never shrink
            return
        try:
            CosineWarmupRestarts(self.first_cycle_steps, 1.0, 0.0, self.warmup_steps, self.cycle_mult,
                                 self.gamma).position(steps)
        except ValueError as exc:
            raise SettingError(f"{key}.cycle_mult", f"is too small for this run's {steps} scheduler steps: "
                                                    f"{exc}") from None

    def schedule(self, max_lr: float) -> Any:
        from shared.lr_schedule import CosineWarmupRestarts

        return CosineWarmupRestarts(self.first_cycle_steps, max_lr, self.min_lr, self.warmup_steps,
                                    self.cycle_mult, self.gamma)


@dataclass(frozen=True)
class StdScheduleConfig(LRSchedulerConfig):
    """min_sampling_denoising_std as a schedule over iterations: the cosine warm-up-restarts curve
    from max_lr down to min_lr (upstream allows a scheduler object there; none ships with it)."""

    max_lr: float = setting(0.1, check=positive)


@dataclass(frozen=True)
class DiffusionPPOModelConfig:
    """The `model` section of a DPPO fine-tuning config (upstream PPODiffusion's arguments)."""

    actor: DenoiserNetworkConfig
    critic: CriticNetworkConfig
    horizon_steps: int = setting(check=positive)
    obs_dim: int = setting(check=positive)
    action_dim: int = setting(check=positive)
    ft_denoising_steps: int = setting(check=positive)
    clip_ploss_coef: float = setting(check=positive)
    gamma_denoising: float = setting(check=unit_interval)
    cond_steps: int = setting(1, check=positive)
    denoising_steps: int = setting(100, check=positive)
    ft_denoising_steps_d: int = setting(0, check=non_negative, doc="annealing: steps removed each interval")
    ft_denoising_steps_t: int = setting(0, check=non_negative, doc="annealing interval in iterations")
    clip_ploss_coef_base: float = setting(1e-3, check=positive)
    clip_ploss_coef_rate: float = 3.0
    clip_vloss_coef: float | None = setting(None, check=positive)
    clip_advantage_lower_quantile: float = setting(0.0, check=unit_interval)
    clip_advantage_upper_quantile: float = setting(1.0, check=unit_interval)
    norm_adv: bool = True
    min_sampling_denoising_std: float | StdScheduleConfig = setting(
        0.1, doc="exploration std floor: a number, or a cosine schedule over iterations")
    min_logprob_denoising_std: float = setting(0.1, check=non_negative)
    eta: dict | None = setting(None, doc="DDIM eta module (upstream model/diffusion/eta.py arguments)")
    learn_eta: bool = False
    predict_epsilon: bool = True
    denoised_clip_value: float | None = setting(1.0, check=positive)
    randn_clip_value: float = setting(10.0, check=positive)
    final_action_clip_value: float | None = setting(None, check=positive)
    eps_clip_value: float | None = setting(None, check=positive)
    use_ddim: bool = False
    ddim_discretize: str = setting("uniform", check=one_of("uniform"))
    ddim_steps: int | None = setting(None, check=positive)

    def __post_init__(self) -> None:
        cond_dim = self.obs_dim * self.cond_steps
        _network_matches(self.actor, self.action_dim, self.horizon_steps, cond_dim, "model.actor")
        if self.critic.cond_dim != cond_dim:
            raise ConfigError(f"model.critic.cond_dim={self.critic.cond_dim} must equal obs_dim * cond_steps "
                              f"= {cond_dim}")
        _steps_check(self.denoising_steps, self.use_ddim, self.ddim_steps)
        steps = self.ddim_steps if self.use_ddim else self.denoising_steps
        if not 1 <= self.ft_denoising_steps <= steps:
            raise SettingError("ft_denoising_steps", f"must be in [1, {steps}] (the sampling chain's steps), "
                                                     f"got {self.ft_denoising_steps}")
        if self.learn_eta and not self.use_ddim:
            raise SettingError("learn_eta", "needs use_ddim: true (eta only exists in DDIM sampling)")
        if self.clip_advantage_lower_quantile > self.clip_advantage_upper_quantile:
            raise SettingError("clip_advantage_lower_quantile", "must not exceed clip_advantage_upper_quantile="
                                                                f"{self.clip_advantage_upper_quantile}, got "
                                                                f"{self.clip_advantage_lower_quantile}")
        if isinstance(self.min_sampling_denoising_std, float) and self.min_sampling_denoising_std < 0:
            raise SettingError("min_sampling_denoising_std", f"must be >= 0, got {self.min_sampling_denoising_std}")
        self.eta_config()  # checks model.eta

    def eta_config(self) -> EtaConfig | None:
        """model.eta read with upstream's per-kind defaults (input dim: the flattened observation history)."""
        if self.eta is None:
            return None
        return eta_config(self.eta, self.action_dim, self.obs_dim * self.cond_steps)

    def diffusion(self) -> DiffusionConfig:
        """The diffusion policy's own arguments (actor as its network)."""
        return DiffusionConfig(
            network=self.actor, horizon_steps=self.horizon_steps, obs_dim=self.obs_dim, action_dim=self.action_dim,
            cond_steps=self.cond_steps, denoising_steps=self.denoising_steps, predict_epsilon=self.predict_epsilon,
            denoised_clip_value=self.denoised_clip_value, randn_clip_value=self.randn_clip_value,
            final_action_clip_value=self.final_action_clip_value, eps_clip_value=self.eps_clip_value,
            use_ddim=self.use_ddim, ddim_steps=self.ddim_steps)


@dataclass(frozen=True)
class GaussianPPOModelConfig:
    """The `model` section of a Gaussian PPO config (upstream PPO_Gaussian's arguments)."""

    actor: GaussianNetworkConfig
    critic: CriticNetworkConfig
    clip_ploss_coef: float = setting(check=positive)
    horizon_steps: int | None = setting(None, check=positive, doc="defaults to model.actor.horizon_steps")
    clip_vloss_coef: float | None = setting(None, check=positive)
    norm_adv: bool = True
    randn_clip_value: float = setting(10.0, check=positive)
    tanh_output: bool = False

    def __post_init__(self) -> None:
        _no_tanh_after_sampling(self.tanh_output)
        if self.horizon_steps is not None and self.actor.horizon_steps != self.horizon_steps:
            raise ConfigError(f"model.actor.horizon_steps={self.actor.horizon_steps} disagrees with "
                              f"model.horizon_steps={self.horizon_steps}")
        if getattr(self.actor, "dropout", 0.0) != 0.0:
            raise ConfigError(f"model.actor.dropout={self.actor.dropout}: Gaussian PPO here runs its actor without "
                              "dropout (log-probabilities of rollouts and updates must agree); use 0")
        if self.critic.cond_dim != self.actor.cond_dim:
            raise ConfigError(f"model.critic.cond_dim={self.critic.cond_dim} must equal model.actor.cond_dim "
                              f"= {self.actor.cond_dim}")
