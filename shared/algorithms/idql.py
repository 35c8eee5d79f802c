"""IDQL's acting in numpy, for both frameworks: where each candidate chunk's noise sits in the array the
driver draws, and which scored candidate each observation executes.

Upstream samples S = train.eval_sample_num candidate chunks per observation (the observations repeated
S times, candidate-major: row s * B + b), scores them with min(target Q1, Q2), then either takes the
argmax, or (expectile exploration) draws one with torch.multinomial from weights critic_hyperparam
where Q - V > 0 and 1 - critic_hyperparam elsewhere. Here that draw is an inverse-CDF lookup of a
uniform u_b = Phi(z_b) made from one extra standard normal per observation, so the driver's single
standard-normal noise array carries every random number an action uses:

    noise (K + 2, S * B, Ta, Da): [0 .. K] the candidates' DDPM chains (x_T, then one z per step),
                                  [K + 1, b, 0, 0] the normal z_b of observation b's choice (rest unused).
"""

from __future__ import annotations

import math

import numpy as np


def noise_shape(num_sampling_steps: int, num_sample: int, n: int, horizon_steps: int,
                action_dim: int) -> tuple[int, ...]:
    """(K + 2, S * n, Ta, Da): K + 1 chain slices for S candidates of n observations, one choice slice."""
    return (num_sampling_steps + 2, num_sample * n, horizon_steps, action_dim)


def chain_noise(noise: np.ndarray) -> np.ndarray:
    """The candidates' chain noise (K + 1, S * B, Ta, Da)."""
    return noise[:-1]


def choice_uniforms(noise: np.ndarray, n: int) -> np.ndarray:
    """u (n,) float64 in [0, 1): Phi of the choice slice's normals noise[-1, :n, 0, 0]."""
    z = np.asarray(noise[-1, :n, 0, 0], np.float64)
    return np.array([0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) for x in z], np.float64).reshape(n)


def candidate_weights(q: np.ndarray, v: np.ndarray, critic_hyperparam: float) -> np.ndarray:
    """Normalised choice weights (S, B): critic_hyperparam where Q - V > 0, else 1 - critic_hyperparam."""
    w = np.where(q - v > 0, critic_hyperparam, 1.0 - critic_hyperparam)
    return w / w.sum(axis=0, keepdims=True)


def choose_candidates(q: np.ndarray, v: np.ndarray | None, u: np.ndarray | None,
                      critic_hyperparam: float) -> np.ndarray:
    """Index (B,) of the candidate each observation executes, from scores q (S, B): the argmax (first on
    ties) when v is None; else the categorical draw of candidate_weights by inverse CDF at u (B,)."""
    if v is None:
        return np.argmax(q, axis=0)
    cdf = np.cumsum(candidate_weights(np.asarray(q, np.float64), np.asarray(v, np.float64), critic_hyperparam),
                    axis=0)  # (S, B)
    return np.minimum((cdf <= np.asarray(u)[None, :]).sum(axis=0), q.shape[0] - 1)
