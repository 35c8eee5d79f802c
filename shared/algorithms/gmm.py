"""What a GMM policy's acting draws, in numpy, for both frameworks (upstream GMMModel samples with
torch.distributions.MixtureSameFamily: a mode from Categorical(logits), then that mode's Normal).

One policy step's noise is one standard-normal array the fine-tuning loop draws keyed by (seed, iteration, step)
(dppo/training/finetune.py), so a torch run and a TF run act on the same numbers:

    noise (n, Ta*Da + 1): [:, :Ta*Da] the chosen mode's standard-normal noise eps,
                          [:, Ta*Da]  a normal z made the uniform u = Phi(z) that picks the mode.

The twins pick mode k of row b by inverse CDF, the number of cumulative mixture weights <= u_b (capped at M - 1),
and act means[b, k] + stds[b, k] * eps_b.
"""

from __future__ import annotations

import numpy as np

from shared.algorithms.gaussian_replay import uniform_from_normal

DETERMINISTIC_STD = 1e-4  # upstream's deterministic GMM acting: every mode's std replaced by this, still sampled


def step_noise_shape(n: int, chunk_dim: int) -> tuple[int, int]:
    """(n, Ta*Da + 1): the noise one GMM policy step of n rows consumes."""
    return (n, chunk_dim + 1)


def split_step_noise(noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eps (n, Ta*Da), u (n,) in (0, 1)) of one step's noise (n, Ta*Da + 1), both in noise's dtype."""
    noise = np.asarray(noise)
    eps = np.ascontiguousarray(noise[:, :-1])
    return eps, uniform_from_normal(noise[:, -1]).astype(noise.dtype)
