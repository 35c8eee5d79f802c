"""Per-step coefficients of the reverse (denoising) chain, for DDPM and DDIM alike.

Every reverse step i (i = 0 is the noisiest) is written in one form:

    x0_hat = clip(recon_x[i] * x - recon_eps[i] * eps_hat)      (epsilon prediction)
    mean   = mean_x0[i] * x0_hat + mean_xt[i] * x
    x_next = mean + std[i] * clip(z, -randn_clip, randn_clip)

For DDPM, mean_x0 / mean_xt are the posterior-mean coefficients. For DDIM,
    mean = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps'
with eps' = (x - sqrt(a) x0_hat) / sqrt(1 - a), i.e. epsilon recomputed from the
clipped x0_hat; expanding eps' gives the same two-coefficient form. Without
clipping eps' equals eps_hat exactly, so both readings agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from shared.diffusion.schedule import ddim_tables, ddpm_tables

# Floor on the DDPM std in deterministic (evaluation) sampling, as upstream DPPO.
DDPM_EVAL_MIN_STD = 1e-3


STEP_FIELDS = ("recon_x", "recon_eps", "mean_x0", "mean_xt", "std")


@dataclass(frozen=True)
class SamplingPlan:
    """Arrays of shape (S,) in sampling order; S = denoising_steps or ddim_steps."""

    timesteps: np.ndarray  # int64 DDPM timestep fed to the network
    recon_x: np.ndarray
    recon_eps: np.ndarray
    mean_x0: np.ndarray
    mean_xt: np.ndarray
    log_variance: np.ndarray  # log of the model variance before any floor
    std: np.ndarray  # std actually used when sampling (floors applied)
    # DDIM only (None for DDPM): alpha_bar at the step and the next one, and sigma at eta = 1, so a
    # sampler whose eta is a tensor (learned, per action dim or per state) forms sigma = eta * sigma_unit.
    alpha: np.ndarray | None = None
    alpha_prev: np.ndarray | None = None
    sigma_unit: np.ndarray | None = None

    @property
    def num_steps(self) -> int:
        return int(self.timesteps.shape[0])

    @functools.cached_property
    def step_scalars(self) -> tuple[dict[str, float], ...]:
        """Per step, recon_x, recon_eps, mean_x0, mean_xt and std as Python floats holding the float32
        values: samplers use them as scalars, so a step does no table lookups."""
        return tuple({k: float(np.float32(getattr(self, k)[i])) for k in STEP_FIELDS} for i in range(self.num_steps))


def sampling_plan(
    denoising_steps: int,
    use_ddim: bool = False,
    ddim_steps: int | None = None,
    ddim_eta: float = 0.0,
    deterministic: bool = True,
    min_sampling_std: float = DDPM_EVAL_MIN_STD,
) -> SamplingPlan:
    """Coefficients of the reverse chain.

    deterministic=True reproduces upstream evaluation sampling: DDPM keeps its
    schedule noise floored at 1e-3 and uses none at t=0; DDIM uses eta = 0 whatever
    ddim_eta is (no noise, and no eta in the mean's direction coefficient either).
    deterministic=False is fine-tuning exploration: every step's std is floored at
    min_sampling_std (DDPM t=0 included; DDIM std = max(sigma, floor)).
    """
    ddpm = ddpm_tables(denoising_steps)
    if use_ddim:
        if ddim_steps is None:
            raise ValueError("use_ddim=True needs ddim_steps")
        ddim = ddim_tables(denoising_steps, ddim_steps, 0.0 if deterministic else ddim_eta)
        sigma_unit = ddim_tables(denoising_steps, ddim_steps, 1.0).sigmas
        ts = ddim.timesteps
        a, a_prev, sigma = ddim.alphas, ddim.alphas_prev, ddim.sigmas
        dir_coef = np.sqrt(np.maximum(1.0 - a_prev - sigma**2, 0.0))
        sqrt_1ma = ddim.sqrt_one_minus_alphas
        recon_x = 1.0 / np.sqrt(a)
        recon_eps = sqrt_1ma / np.sqrt(a)
        mean_x0 = np.sqrt(a_prev) - dir_coef * np.sqrt(a) / sqrt_1ma
        mean_xt = dir_coef / sqrt_1ma
        with np.errstate(divide="ignore"):
            log_variance = np.log(sigma**2)
        if deterministic:
            std = np.zeros_like(sigma)
        else:
            std = np.maximum(sigma, min_sampling_std)
    else:
        ts = np.arange(denoising_steps - 1, -1, -1, dtype=np.int64)
        recon_x = ddpm.sqrt_recip_alphas_cumprod[ts]
        recon_eps = ddpm.sqrt_recipm1_alphas_cumprod[ts]
        mean_x0 = ddpm.posterior_mean_coef_x0[ts]
        mean_xt = ddpm.posterior_mean_coef_xt[ts]
        log_variance = ddpm.posterior_log_variance_clipped[ts]
        raw_std = np.exp(0.5 * log_variance)
        if deterministic:
            std = np.where(ts == 0, 0.0, np.maximum(raw_std, DDPM_EVAL_MIN_STD))
        else:
            std = np.maximum(raw_std, min_sampling_std)
    return SamplingPlan(
        timesteps=ts.astype(np.int64),
        recon_x=recon_x,
        recon_eps=recon_eps,
        mean_x0=mean_x0,
        mean_xt=mean_xt,
        log_variance=log_variance,
        std=std,
        **({"alpha": a, "alpha_prev": a_prev, "sigma_unit": sigma_unit} if use_ddim else {}),
    )


def ddim_step_arrays(plan: SamplingPlan, steps: slice = slice(None)) -> dict[str, np.ndarray]:
    """What a DDIM step with a tensor eta needs, for the plan's `steps`: sqrt(a), sqrt(1 - a), sqrt(a_prev),
    a_prev and sigma at eta = 1 (sigma = max(eta sigma_unit, 1e-10) is then formed in the graph)."""
    if plan.alpha is None or plan.alpha_prev is None or plan.sigma_unit is None:
        raise ValueError("ddim_step_arrays needs a DDIM plan")
    a, a_prev = plan.alpha[steps], plan.alpha_prev[steps]
    return {"sqrt_a": np.sqrt(a), "sqrt_1ma": np.sqrt(1.0 - a), "sqrt_a_prev": np.sqrt(a_prev), "a_prev": a_prev,
            "sigma_unit": plan.sigma_unit[steps]}


@dataclass(frozen=True)
class FinetuneTables:
    """The last K (fine-tuned) reverse steps of a plan, in chain order, each (K,).

    Transition j maps chain[j] -> chain[j + 1]; logprob_std is the std of its Gaussian
    when scoring log-probabilities (floored at min_logprob_denoising_std).
    """

    timesteps: np.ndarray
    recon_x: np.ndarray
    recon_eps: np.ndarray
    mean_x0: np.ndarray
    mean_xt: np.ndarray
    logprob_std: np.ndarray


def finetune_tables(plan: SamplingPlan, ft_denoising_steps: int, min_logprob_std: float) -> FinetuneTables:
    if not 1 <= ft_denoising_steps <= plan.num_steps:
        raise ValueError(f"ft_denoising_steps must be in [1, {plan.num_steps}], got {ft_denoising_steps}")
    last = slice(plan.num_steps - ft_denoising_steps, plan.num_steps)
    raw_std = np.exp(0.5 * plan.log_variance[last])
    return FinetuneTables(
        timesteps=plan.timesteps[last].copy(),
        recon_x=plan.recon_x[last].copy(),
        recon_eps=plan.recon_eps[last].copy(),
        mean_x0=plan.mean_x0[last].copy(),
        mean_xt=plan.mean_xt[last].copy(),
        logprob_std=np.maximum(raw_std, min_logprob_std),
    )
