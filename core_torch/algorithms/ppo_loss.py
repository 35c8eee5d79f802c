"""PPO loss terms shared by the Gaussian and the diffusion policy (upstream's definitions).

Shapes: N = the minibatch's rows (samples, or sample x denoising step for DPPO).
"""

from __future__ import annotations

import math

import torch

LOGPROB_MIN, LOGPROB_MAX = -5.0, 2.0  # upstream clamps log-probabilities to this range
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_logprob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return -((x - mean) ** 2) / (2 * std**2) - torch.log(std) - HALF_LOG_2PI


def normal_entropy(std: torch.Tensor) -> torch.Tensor:
    return 0.5 + HALF_LOG_2PI + torch.log(std)


def quantile(x: torch.Tensor, q: float) -> torch.Tensor:
    """Linear-interpolation quantile of a 1-d tensor (torch.quantile's default)."""
    return torch.quantile(x, q)


def normalize_advantages(adv: torch.Tensor) -> torch.Tensor:
    """(adv - mean) / (unbiased std + 1e-8).  (B,)"""
    return (adv - adv.mean()) / (adv.std() + 1e-8)


def clip_advantages(adv: torch.Tensor, lower_q: float = 0.0, upper_q: float = 1.0) -> torch.Tensor:
    """Clip to the batch's [lower_q, upper_q] quantiles; DPPO does it whether or not it normalised.  (B,)"""
    return adv.clamp(quantile(adv, lower_q), quantile(adv, upper_q))


def clipped_policy_loss(newlogprobs: torch.Tensor, oldlogprobs: torch.Tensor, advantages: torch.Tensor,
                        clip_coef: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO-clip on (N,) log-probs; returns (pg_loss, approx_kl, clipfrac); kl and clipfrac carry no gradient."""
    logratio = newlogprobs.clamp(LOGPROB_MIN, LOGPROB_MAX) - oldlogprobs.clamp(LOGPROB_MIN, LOGPROB_MAX)
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).to(ratio.dtype).mean()
    pg1 = -advantages * ratio
    pg2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    return torch.max(pg1, pg2).mean(), approx_kl, clipfrac


def value_loss(newvalues: torch.Tensor, returns: torch.Tensor, oldvalues: torch.Tensor,
               clip_vloss_coef: float | None) -> torch.Tensor:
    """0.5 * mean squared error, optionally with PPO's value clipping.  (N,) inputs."""
    if clip_vloss_coef is None:
        return 0.5 * ((newvalues - returns) ** 2).mean()
    clipped = oldvalues + torch.clamp(newvalues - oldvalues, -clip_vloss_coef, clip_vloss_coef)
    return 0.5 * torch.max((newvalues - returns) ** 2, (clipped - returns) ** 2).mean()
