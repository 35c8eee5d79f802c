"""Numbers of the DPPO policy loss that depend only on hyper-parameters."""

from __future__ import annotations

import math

import numpy as np

# A Gaussian policy evaluated deterministically still samples, with this std (upstream GaussianModel).
GAUSSIAN_EVAL_STD = 1e-4


def denoising_discount(ft_denoising_steps: int, gamma_denoising: float) -> np.ndarray:
    """Discount of each fine-tuned denoising step in chain order.  (K,)

    The step that produces the executed action (the last one) gets weight 1,
    the earliest gets gamma_denoising ** (K - 1).
    """
    k = np.arange(ft_denoising_steps)
    return gamma_denoising ** (ft_denoising_steps - 1 - k).astype(np.float64)


def clip_coefficients(
    ft_denoising_steps: int,
    clip_ploss_coef: float,
    clip_ploss_coef_base: float,
    clip_ploss_coef_rate: float,
) -> np.ndarray:
    """PPO ratio clip per fine-tuned denoising step, interpolated exponentially.  (K,)

    Goes from clip_ploss_coef_base at the first (noisiest) step to clip_ploss_coef
    at the last one.
    """
    if ft_denoising_steps == 1:
        return np.array([clip_ploss_coef], dtype=np.float64)
    u = np.arange(ft_denoising_steps) / (ft_denoising_steps - 1)
    shape = (np.exp(clip_ploss_coef_rate * u) - 1.0) / (math.exp(clip_ploss_coef_rate) - 1.0)
    return clip_ploss_coef_base + (clip_ploss_coef - clip_ploss_coef_base) * shape
