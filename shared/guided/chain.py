"""The reward-guided engine's denoising chain as tables: the cosine betas (floored at 1e-5), DDPM ancestral
sampling with variance beta_t (not the posterior variance DPPO samples with), the model told the time as
t / T.

The reverse step is the usual one, written through the project's sampling plan: the model's noise
estimate gives p0_hat = recon_x p_t - recon_eps eps_hat (the same reconstruction the reward term of the
loss scores), the step's mean is mean_x0 p0_hat + mean_xt p_t (algebraically the engine's
(p_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(alpha_t)), and noise of std sqrt(beta_t) follows, none
at t = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.diffusion.sampling_plan import SamplingPlan
from shared.diffusion.schedule import DDPMTables, cosine_beta_schedule, ddpm_tables

BETA_MIN = 1e-5


@dataclass(frozen=True)
class GuidedChain:
    """Training tables indexed by t in [0, T) and the reverse plan in sampling order (t = T-1 .. 0)."""

    tables: DDPMTables
    plan: SamplingPlan
    time_input: np.ndarray  # (T,) the model's time input t / T, indexed by t

    @property
    def denoising_steps(self) -> int:
        return len(self.tables.betas)


def guided_chain(denoising_steps: int) -> GuidedChain:
    tables = ddpm_tables(denoising_steps, cosine_beta_schedule(denoising_steps, beta_min=BETA_MIN))
    ts = np.arange(denoising_steps - 1, -1, -1, dtype=np.int64)
    std = np.where(ts == 0, 0.0, np.sqrt(tables.betas[ts]))
    plan = SamplingPlan(
        timesteps=ts,
        recon_x=tables.sqrt_recip_alphas_cumprod[ts],
        recon_eps=tables.sqrt_recipm1_alphas_cumprod[ts],
        mean_x0=tables.posterior_mean_coef_x0[ts],
        mean_xt=tables.posterior_mean_coef_xt[ts],
        log_variance=np.log(tables.betas[ts]),
        std=std,
    )
    return GuidedChain(tables, plan, np.arange(denoising_steps, dtype=np.float64) / denoising_steps)
