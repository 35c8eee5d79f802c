"""The context-shifted Rosenbrock benchmark of the reward-guided engine, written once for numpy, torch and
TF (`xp` is the array module: numpy, torch or tensorflow; each has tanh and exp).

For a context x (B, 2) the bowl has a = 1 + tanh(x1) / 2 in [0.5, 1.5] and b = 50 exp(tanh(x2) / 2) in
[30, 82], and is moved by a quarter of the context: with q = p + x / 4,

    cost(x, p)   = (a - q1)^2 + b (q2 - q1^2)^2          >= 0, zero at q = (a, a^2)
    reward(x, p) = tanh(-cost / scale),  scale 5          in (-1, 0]: the squash the engine trains with

so the optimum is p*(x) = (a, a^2) - x / 4, of reward 0. The training data are those optima plus a
little Gaussian noise, for contexts drawn from N(0, I).
"""

from __future__ import annotations

from typing import Any

import numpy as np

REWARD_SCALE = 5.0


def bowl(x: Any, xp: Any) -> tuple[Any, Any]:
    """(a, b), each (B,), of contexts x (B, 2)."""
    return 1.0 + 0.5 * xp.tanh(x[:, 0]), 50.0 * xp.exp(0.5 * xp.tanh(x[:, 1]))


def cost(x: Any, p: Any, xp: Any) -> Any:
    """The shifted Rosenbrock value (B,) of parameters p (B, 2) in contexts x (B, 2); smaller is better."""
    a, b = bowl(x, xp)
    q = p + 0.25 * x
    return (a - q[:, 0]) ** 2 + b * (q[:, 1] - q[:, 0] ** 2) ** 2


def reward(x: Any, p: Any, xp: Any, scale: float = REWARD_SCALE) -> Any:
    """tanh(-cost / scale) (B,): the bounded reward the loss and MPPI use."""
    return xp.tanh(-cost(x, p, xp) / scale)


def optimum(x: np.ndarray) -> np.ndarray:
    """p*(x) (B, 2), where the reward is 0."""
    a, _ = bowl(x, np)
    return np.stack([a, a**2], axis=1) - 0.25 * x


def dataset(n: int, seed: int, noise_std: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """n contexts from N(0, I) and their optima plus N(0, noise_std^2) noise, float32 (x, p)."""
    rng = np.random.default_rng([seed, 31])
    x = rng.standard_normal((n, 2))
    p = optimum(x) + noise_std * rng.standard_normal((n, 2))
    return x.astype(np.float32), p.astype(np.float32)


def validation_contexts(seed: int, epoch: int, n: int) -> np.ndarray:
    """The n contexts the validation after `epoch` samples for (fresh each epoch, as the engine's)."""
    return np.random.default_rng([seed, epoch, 32]).standard_normal((n, 2)).astype(np.float32)


def reference_levels(seed: int, n: int = 4096, noise_std: float = 0.05) -> dict[str, float]:
    """Mean rewards a reader can place a validation curve against: the training data's own p, p drawn from
    N(0, I) (what an untrained sampler starts from), and the optimum."""
    x, p = dataset(n, seed, noise_std)
    rng = np.random.default_rng([seed, 33])
    x64 = x.astype(np.float64)
    levels = {"data": reward(x64, p.astype(np.float64), np), "random": reward(x64, rng.standard_normal((n, 2)), np),
              "optimum": reward(x64, optimum(x64), np)}
    return {k: float(np.mean(v)) for k, v in levels.items()}
