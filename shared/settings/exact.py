"""The `model` section of an exact-likelihood DPPO config (upstream cfg/gym/finetune/<env>/
ft_ppo_exact_diffusion_mlp.yaml: PPOExactDiffusion's arguments) and ExactLikelihoodSettings, the typed
view the twins' likelihood takes.

PPOExactDiffusion is a VPGDiffusion (the sampler, actor / actor_ft / critic of DPPO) whose PPO ratio
is that of the final action chunk's log-likelihood, integrated along the VP-SDE's probability-flow
ODE (shared/diffusion/exact_likelihood.py). It takes none of PPODiffusion's per-denoising-step keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config.reader import SettingError, one_of, positive, setting
from shared.diffusion.exact_likelihood import HUTCHINSON_TYPES, ProbabilityFlowPlan, probability_flow_plan
from shared.errors import ConfigError
from shared.settings.model import DiffusionPPOModelConfig, StdScheduleConfig

# Integrators both frameworks can run op for op. Upstream's other methods (its default RK23, dopri5, ...)
# choose their steps from error estimates on float values, which the two frameworks round differently.
SDE_METHODS = ("euler",)


@dataclass(frozen=True)
class VPSDEConfig:
    """`model.sde`: upstream's sde_lib.VPSDE; its betas are the policy's DDPM betas (set_betas)."""

    N: int = setting(check=positive, doc="upstream's discretisation count; must equal denoising_steps")


@dataclass(frozen=True)
class ExactLikelihoodSettings:
    """What the probability-flow log-likelihood needs (upstream get_likelihood_fn's arguments)."""

    denoising_steps: int
    ft_denoising_steps: int
    step_size: float
    eps: float
    min_beta: float
    probability_flow: bool
    num_epsilon: int
    hutchinson_type: str
    predict_epsilon: bool

    def plan(self) -> ProbabilityFlowPlan:
        return probability_flow_plan(self.denoising_steps, self.ft_denoising_steps, self.step_size, self.eps,
                                     self.min_beta, self.probability_flow, self.predict_epsilon)


# DiffusionPPOModelConfig keys upstream's PPOExactDiffusion has no use for (its loss is one PPO ratio per
# chunk, and its training loop never calls model.step(), so nothing anneals).
_DPPO_ONLY = {
    "gamma_denoising": "is a DPPO key; exact-likelihood PPO scores the whole chunk at once, with no denoising "
                       "discount",
    "clip_ploss_coef_base": "is a DPPO key; exact-likelihood PPO clips every ratio at clip_ploss_coef",
    "clip_ploss_coef_rate": "is a DPPO key; exact-likelihood PPO clips every ratio at clip_ploss_coef",
    "clip_advantage_lower_quantile": "is a DPPO key; upstream's exact-likelihood loss does not clip advantages",
    "clip_advantage_upper_quantile": "is a DPPO key; upstream's exact-likelihood loss does not clip advantages",
    "ft_denoising_steps_d": "is not supported: upstream's exact-likelihood agent never calls model.step(), so "
                            "nothing anneals",
    "ft_denoising_steps_t": "is not supported: upstream's exact-likelihood agent never calls model.step(), so "
                            "nothing anneals",
    "learn_eta": "is not supported: the exact likelihood never reads eta, so a learned eta gets no gradient",
}


@dataclass(frozen=True)
class ExactDiffusionPPOModelConfig(DiffusionPPOModelConfig):
    """DiffusionPPOModelConfig's sampler and network keys plus PPOExactDiffusion's likelihood keys."""

    REFUSED_KEYS = _DPPO_ONLY

    gamma_denoising: float = 1.0  # not read: refused as a key (REFUSED_KEYS); DPPOSettings wants a value
    sde: VPSDEConfig | None = setting(None, doc="upstream's VPSDE section (N); null: N = denoising_steps")
    sde_method: str = setting("euler", check=one_of(*SDE_METHODS),
                              doc="ODE integrator (upstream default RK23: adaptive, not reproducible in both "
                                  "frameworks; its shipped configs use euler)")
    sde_step_size: float = setting(1e-3, check=positive, doc="Euler step in t (upstream's default 1e-3)")
    sde_eps: float = setting(1e-4, check=positive, doc="the ODE starts at t = sde_eps")
    sde_min_beta: float = setting(1e-2, check=positive, doc="the VP-SDE floors the DDPM betas at this value")
    sde_probability_flow: bool = setting(False, doc="true: the probability-flow ODE (score weight 1/2); false "
                                                    "(upstream's default): the reverse SDE's drift (weight 1)")
    sde_num_epsilon: int = setting(1, check=positive, doc="Hutchinson probes per chunk, averaged")
    sde_hutchinson_type: str = setting("Rademacher", check=one_of(*HUTCHINSON_TYPES))
    sde_rtol: float = setting(1e-4, check=positive, doc="adaptive solvers' tolerance; the Euler method reads none")
    sde_atol: float = setting(1e-4, check=positive, doc="adaptive solvers' tolerance; the Euler method reads none")
    rtol: float | None = setting(None, check=positive,
                                 doc="in upstream's configs at model level, where PPOExactDiffusion passes it "
                                     "on unread (its solver tolerance is sde_rtol); read and unused here too")
    atol: float | None = setting(None, check=positive, doc="as rtol")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sde is not None and self.denoising_steps != self.sde.N:
            raise SettingError("sde.N", f"must equal denoising_steps={self.denoising_steps} (the VP-SDE runs on "
                                        f"the policy's own DDPM betas), got {self.sde.N}")
        if isinstance(self.min_sampling_denoising_std, StdScheduleConfig):
            raise SettingError("min_sampling_denoising_std", "must be a number: upstream's exact-likelihood agent "
                                                             "never steps a schedule")
        if not 0 < self.sde_eps < 1:
            raise SettingError("sde_eps", f"must be in (0, 1) (the ODE runs from sde_eps to 1), got {self.sde_eps}")
        try:
            self.likelihood().plan()
        except ValueError as exc:
            raise SettingError("sde_step_size", f"({self.sde_step_size}) does not fit the schedule: {exc}") from None

    def likelihood(self) -> ExactLikelihoodSettings:
        return ExactLikelihoodSettings(
            denoising_steps=self.denoising_steps, ft_denoising_steps=self.ft_denoising_steps,
            step_size=self.sde_step_size, eps=self.sde_eps, min_beta=self.sde_min_beta,
            probability_flow=self.sde_probability_flow, num_epsilon=self.sde_num_epsilon,
            hutchinson_type=self.sde_hutchinson_type, predict_epsilon=self.predict_epsilon)

    @staticmethod
    def check_train(train: Any) -> None:
        """The `train` keys upstream's exact-likelihood agent cannot use."""
        if train.use_bc_loss:
            raise ConfigError("train.use_bc_loss: upstream's exact-likelihood loss has no BC term (it raises "
                              "NotImplementedError)")
        if train.ent_coef:
            raise ConfigError("train.ent_coef: upstream's exact-likelihood loss has no entropy term")
