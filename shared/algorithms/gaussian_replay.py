"""What the Gaussian off-policy fine-tuners (SAC, RLPD, IBRL, Cal-QL) draw and compute in numpy, for both
frameworks: uniform exploration actions, the noise of an IBRL step, and discounted returns-to-go.

Every random number comes from a standard normal array the loop draws keyed by (seed, iteration, step)
(dppo/training/finetune.py) or by (seed, iteration, stream, minibatch) (shared/algorithms/offpolicy.py), so
a torch run and a TF run act and train on the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

_SQRT2 = math.sqrt(2.0)
_ERF = np.frompyfunc(math.erf, 1, 1)


def uniform_from_normal(z: np.ndarray) -> np.ndarray:
    """Phi(z) = (1 + erf(z / sqrt 2)) / 2: standard normal draws mapped to uniform draws in (0, 1), elementwise
    (float64; the arrays are one step's or one minibatch's)."""
    return 0.5 * (1.0 + _ERF(np.asarray(z, np.float64) / _SQRT2).astype(np.float64))


def explore_actions(noise: np.ndarray, horizon_steps: int, action_dim: int) -> np.ndarray:
    """Uniform actions in (-1, 1) (N, Ta, Da) from a step's noise (N, Ta*Da): upstream samples the env's action
    space, the normalised box [-1, 1] of every supported task, while n_explore_steps last."""
    u = uniform_from_normal(noise)
    return (2.0 * u - 1.0).astype(np.float32).reshape(len(noise), horizon_steps, action_dim)


def ibrl_step_noise_shape(n: int, chunk: int, n_critics: int) -> tuple[int, ...]:
    """One flat vector per IBRL step: n_critics (the drawn pair: the first two of their argsort, a uniform
    random permutation), then n rows of 2 * chunk + 1 (the frozen policy's and the actor's noise, and the
    draw of the soft pick)."""
    return (n_critics + n * (2 * chunk + 1),)


def split_ibrl_step_noise(noise: np.ndarray, n: int, chunk: int, n_critics: int) -> dict[str, np.ndarray]:
    """{'pair': (2,) int64, 'bc': (n, chunk), 'rl': (n, chunk), 'uniform': (n,) in (0, 1)} of one step's noise."""
    noise = np.asarray(noise)
    rows = noise[n_critics:].reshape(n, 2 * chunk + 1)
    return {"pair": random_pair(noise[:n_critics]), "bc": np.ascontiguousarray(rows[:, :chunk]),
            "rl": np.ascontiguousarray(rows[:, chunk: 2 * chunk]),
            "uniform": uniform_from_normal(rows[:, -1]).astype(noise.dtype)}


def random_pair(z: np.ndarray) -> np.ndarray:
    """Two distinct member indices, uniformly: the first two of a random permutation (argsort of iid draws),
    as upstream's torch.randperm(n)[:2]."""
    return np.argsort(np.asarray(z), kind="stable")[:2].astype(np.int64)


def returns_to_go(rewards: np.ndarray, traj_lengths: np.ndarray, discount: float) -> np.ndarray:
    """Discounted return from each step to its episode's end (T,) float32, episodes back to back
    (upstream's reward-to-go of StitchedSequenceQLearningDataset and of Cal-QL's online episodes)."""
    out = np.zeros(len(rewards), np.float64)
    start = 0
    for length in np.asarray(traj_lengths, np.int64):
        acc = 0.0
        for t in range(start + length - 1, start - 1, -1):
            acc = float(rewards[t]) + discount * acc
            out[t] = acc
        start += length
    return out.astype(np.float32)
