"""DDPM / DDIM tables as plain float64 numpy arrays.

Every table is indexed by the DDPM timestep t in [0, K) unless its name says
otherwise. Frameworks cast these to float32 constants; they never re-derive them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cosine_beta_schedule(denoising_steps: int, s: float = 0.008, beta_min: float = 0.0) -> np.ndarray:
    """Betas of the cosine schedule (Nichol & Dhariwal) on the grid t / K, clipped to [beta_min, 0.999]
    (upstream DPPO: beta_min 0; the reward-guided engine: 1e-5).  (K,)"""
    if denoising_steps < 1:
        raise ValueError(f"denoising_steps must be >= 1, got {denoising_steps}")
    n = denoising_steps + 1
    grid = np.linspace(0, n, n)
    alpha_bar = np.cos(((grid / n) + s) / (1 + s) * np.pi * 0.5) ** 2
    alpha_bar = alpha_bar / alpha_bar[0]
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return np.clip(betas, beta_min, 0.999)


@dataclass(frozen=True)
class DDPMTables:
    """All DDPM quantities derived from the betas, each of shape (K,)."""

    betas: np.ndarray
    alphas: np.ndarray
    alphas_cumprod: np.ndarray
    alphas_cumprod_prev: np.ndarray
    sqrt_alphas_cumprod: np.ndarray
    sqrt_one_minus_alphas_cumprod: np.ndarray
    sqrt_recip_alphas_cumprod: np.ndarray
    sqrt_recipm1_alphas_cumprod: np.ndarray
    posterior_variance: np.ndarray
    posterior_log_variance_clipped: np.ndarray
    posterior_mean_coef_x0: np.ndarray
    posterior_mean_coef_xt: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)


def ddpm_tables(denoising_steps: int, betas: np.ndarray | None = None) -> DDPMTables:
    """The tables of `betas` (default: upstream DPPO's cosine schedule of `denoising_steps`)."""
    betas = cosine_beta_schedule(denoising_steps) if betas is None else np.asarray(betas, np.float64)
    if betas.shape != (denoising_steps,):
        raise ValueError(f"betas of shape {betas.shape} for {denoising_steps} denoising steps")
    alphas = 1.0 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    variance = betas * (1.0 - abar_prev) / (1.0 - abar)
    return DDPMTables(
        betas=betas,
        alphas=alphas,
        alphas_cumprod=abar,
        alphas_cumprod_prev=abar_prev,
        sqrt_alphas_cumprod=np.sqrt(abar),
        sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - abar),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / abar),
        sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / abar - 1.0),
        posterior_variance=variance,
        posterior_log_variance_clipped=np.log(np.maximum(variance, 1e-20)),
        # mu_t = coef_x0 * x0 + coef_xt * x_t
        posterior_mean_coef_x0=betas * np.sqrt(abar_prev) / (1.0 - abar),
        posterior_mean_coef_xt=(1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar),
    )


@dataclass(frozen=True)
class DDIMTables:
    """DDIM quantities in sampling order (index 0 = noisiest step), each (S,)."""

    timesteps: np.ndarray  # int64 DDPM timestep of each DDIM step
    alphas: np.ndarray  # alpha_bar at that timestep
    alphas_prev: np.ndarray  # alpha_bar at the next (less noisy) step, 1 at the end
    sqrt_one_minus_alphas: np.ndarray
    sigmas: np.ndarray  # for the given eta

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)


def ddim_sigma(alphas: np.ndarray, alphas_prev: np.ndarray, eta: float | np.ndarray) -> np.ndarray:
    """DDIM sigma = eta * sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))."""
    return eta * np.sqrt((1.0 - alphas_prev) / (1.0 - alphas) * (1.0 - alphas / alphas_prev))


def ddim_tables(denoising_steps: int, ddim_steps: int, eta: float = 0.0) -> DDIMTables:
    """'uniform' (HF 'leading') DDIM discretisation of a cosine DDPM schedule."""
    if not 1 <= ddim_steps <= denoising_steps:
        raise ValueError(
            f"ddim_steps must be in [1, denoising_steps={denoising_steps}], got {ddim_steps}"
        )
    abar = ddpm_tables(denoising_steps).alphas_cumprod
    step_ratio = denoising_steps // ddim_steps
    ts = np.arange(ddim_steps, dtype=np.int64) * step_ratio  # ascending
    alphas = abar[ts]
    alphas_prev = np.concatenate([[1.0], abar[ts[:-1]]])
    sigmas = ddim_sigma(alphas, alphas_prev, eta)
    flip = slice(None, None, -1)
    return DDIMTables(
        timesteps=ts[flip].copy(),
        alphas=alphas[flip].copy(),
        alphas_prev=alphas_prev[flip].copy(),
        sqrt_one_minus_alphas=np.sqrt(1.0 - alphas)[flip].copy(),
        sigmas=sigmas[flip].copy(),
    )


def sinusoidal_frequencies(dim: int) -> np.ndarray:
    """Frequencies of the sinusoidal time embedding: emb(t) = [sin(t f), cos(t f)].  (dim//2,)"""
    half = dim // 2
    if half < 2:
        raise ValueError(f"time_dim must be >= 4 for a sinusoidal embedding, got {dim}")
    scale = np.log(10000.0) / (half - 1)
    return np.exp(np.arange(half) * -scale)
