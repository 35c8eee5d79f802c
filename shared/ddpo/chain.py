"""DDPO's denoising chain as tables: DDIM with eta = 1 over a cosine DDPM schedule (the project's
shared/diffusion tables), every step a Gaussian policy of the fixed std it samples with.

A DDIM step at eta = 1 is, through the project's sampling plan,
    x0_hat = clip(recon_x x_t - recon_eps eps_hat, -1, 1),   mean = mean_x0 x0_hat + mean_xt x_t,
    x_prev = mean + std z,                                     std = max(sigma_t, min_std)
with sigma_t = eta sqrt((1 - a_prev) / (1 - a) (1 - a / a_prev)). The plan's last step goes to a_prev = 1,
where sigma is 0; the floor min_std (DPPO's min_sampling/logprob std, the same value for both) keeps that
step a Gaussian whose log-density exists. eps_hat is the classifier-free-guided estimate
eps_u + w (eps_c - eps_u). Log-probabilities are scored with DPPO's finetune tables over all S steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.diffusion.sampling_plan import FinetuneTables, SamplingPlan, finetune_tables, sampling_plan
from shared.diffusion.schedule import DDPMTables, ddpm_tables


@dataclass(frozen=True)
class DDPOChain:
    """DDPM training tables indexed by t in [0, T), the DDIM plan and its scoring tables in sampling order."""

    tables: DDPMTables
    plan: SamplingPlan
    scoring: FinetuneTables  # (S,) each: timesteps, coefficients, logprob_std (== the sampling std)
    time_input: np.ndarray  # (T,) the denoiser's time input t / T

    @property
    def denoising_steps(self) -> int:
        return len(self.tables.betas)

    @property
    def sampling_steps(self) -> int:
        return self.plan.num_steps


def ddpo_chain(denoising_steps: int, ddim_steps: int, eta: float, min_std: float) -> DDPOChain:
    plan = sampling_plan(denoising_steps, use_ddim=True, ddim_steps=ddim_steps, ddim_eta=eta, deterministic=False,
                         min_sampling_std=min_std)
    scoring = finetune_tables(plan, ddim_steps, min_std)
    return DDPOChain(ddpm_tables(denoising_steps), plan, scoring,
                     np.arange(denoising_steps, dtype=np.float64) / denoising_steps)
