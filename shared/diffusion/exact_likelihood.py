"""The numpy half of exact-likelihood DPPO (upstream PPOExactDiffusion): the VP-SDE built on the
policy's own DDPM betas, the fixed Euler grid of the probability-flow ODE, and the Hutchinson probes.

Upstream scores an action chunk x (Ta, Da) by integrating, from t = eps to t = 1,

    dx/dt = f(x, t) = -beta_k x / 2 - w beta_k score(x, k),   score = -net(x, k) / sqrt(1 - abar_k)
    d(delta)/dt = div f(x, t)  (Hutchinson: mean over probes v of v . (df/dx)^T v)

at DDPM timestep k = round(t * denoising_steps), with w = 1/2 on the probability-flow ODE (1 on the
reverse SDE's drift), then log p(x) = (log N(z; 0, I) + delta) / (D ln 2), z = x(1), D = Ta * Da:
bits per dimension. Both twins read the per-step coefficients below; nothing here touches a framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.diffusion.schedule import cosine_beta_schedule

HUTCHINSON_TYPES = ("Rademacher", "Gaussian")
PROBE_STREAM = 6  # keeps the probe draws apart from the other numpy streams keyed by (seed, itr, ...)


def vp_sde_tables(denoising_steps: int, min_beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(betas, sqrt(alphas), sqrt(1 - alphas_cumprod)) of upstream's VPSDE.set_betas: the cosine betas
    floored at min_beta, everything re-derived from the floored betas.  Each (N,)."""
    betas = np.maximum(cosine_beta_schedule(denoising_steps), min_beta)
    alphas = 1.0 - betas
    return betas, np.sqrt(alphas), np.sqrt(1.0 - np.cumprod(alphas))


def euler_grid(t0: float, t1: float, step_size: float) -> np.ndarray:
    """torchdiffeq's fixed grid for `step_size`: t0, t0 + h, ... for ceil((t1 - t0) / h + 1) points, the
    last one replaced by t1 (so the final step is shorter).  (M + 1,) float64."""
    n = int(math.ceil((t1 - t0) / step_size + 1))
    grid = np.arange(n, dtype=np.float64) * step_size + t0
    grid[-1] = t1
    return grid


@dataclass(frozen=True)
class ProbabilityFlowPlan:
    """Everything one Euler step m of upstream's likelihood ODE needs; each array is (M,).

    The drift at step m is x_coef[m] * x + out_coef[m] * net(x, timesteps[m]); net is actor_ft where
    use_ft[m] (upstream: round(t N) <= ft_denoising_steps), else the frozen base actor. The divergence
    always differentiates the base actor's drift (upstream passes the base model to its div_fn).
    """

    timesteps: np.ndarray  # int64 DDPM timestep k = round(t_m * N)
    dts: np.ndarray  # float64 t_{m+1} - t_m
    use_ft: np.ndarray  # bool
    x_coef: np.ndarray  # float64
    out_coef: np.ndarray  # float64

    @property
    def num_steps(self) -> int:
        return len(self.dts)


def probability_flow_plan(denoising_steps: int, ft_denoising_steps: int, step_size: float, eps: float,
                          min_beta: float, probability_flow: bool, predict_epsilon: bool) -> ProbabilityFlowPlan:
    """The Euler steps from t = eps to t = 1 (upstream's T) and their drift coefficients.

    Epsilon prediction: score = -out / sqrt(1 - abar_k), so the drift is -beta x / 2 + w beta out / sqrt(1 - abar).
    x0 prediction (upstream's get_score_fn): score = -(x - sqrt(alpha_k) out) / beta_k, so the drift is
    -beta x / 2 + w (x - sqrt(alpha_k) out).
    """
    grid = euler_grid(eps, 1.0, step_size)
    starts = grid[:-1]
    k = np.round(starts * denoising_steps).astype(np.int64)  # numpy and torch both round half to even
    if k.min() < 0 or k.max() >= denoising_steps:
        bad = starts[np.argmax((k < 0) | (k >= denoising_steps))]
        raise ValueError(f"the Euler grid evaluates t={bad:.6g}, DDPM timestep {round(bad * denoising_steps)}, "
                         f"outside the schedule's 0..{denoising_steps - 1}")
    betas, sqrt_alphas, sqrt_1m_abar = vp_sde_tables(denoising_steps, min_beta)
    w = 0.5 if probability_flow else 1.0
    beta = betas[k]
    if predict_epsilon:
        x_coef, out_coef = -0.5 * beta, w * beta / sqrt_1m_abar[k]
    else:
        x_coef, out_coef = -0.5 * beta + w, -w * sqrt_alphas[k]
    return ProbabilityFlowPlan(timesteps=k, dts=np.diff(grid), use_ft=k <= ft_denoising_steps, x_coef=x_coef,
                               out_coef=out_coef)


def prior_log_norm(dim: int) -> float:
    """-D/2 log(2 pi): the standard normal prior's log-density at z = 0 for a chunk of D numbers."""
    return -0.5 * dim * math.log(2.0 * math.pi)


def bits_per_dim_scale(dim: int) -> float:
    """1 / (D ln 2): turns a log-density of D numbers into bits per dimension (upstream's unit)."""
    return 1.0 / (dim * math.log(2.0))


class ProbeSource:
    """The Hutchinson probes an agent's likelihood calls use, drawn in numpy so both twins see the same.

    `reseed(key)` at the start of every iteration (the agent's seed_rng, key = framework_seed(seed, itr));
    then phase 0 (scoring the rollout, one call per chunk) and phase 1 (minibatch updates) each count their
    calls, and call c of phase p draws from (key, p, c): fresh probes every call, as upstream draws them,
    and a resumed run (always at an iteration boundary) draws the same ones.
    """

    SCORE, UPDATE = 0, 1

    def __init__(self, num_epsilon: int, horizon: int, action_dim: int, kind: str) -> None:
        self.num_epsilon, self.horizon, self.action_dim, self.kind = num_epsilon, horizon, action_dim, kind
        self.reseed(0)

    def reseed(self, key: int) -> None:
        self.key, self.calls = key, [0, 0]

    def draw(self, phase: int, rows: int) -> np.ndarray:
        """(rows * num_epsilon, Ta, Da) float32 for the next call of `phase`."""
        rng = np.random.default_rng([self.key, phase, self.calls[phase], PROBE_STREAM])
        self.calls[phase] += 1
        return hutchinson_probes(rng, rows, self.num_epsilon, self.horizon, self.action_dim, self.kind)


def hutchinson_probes(rng: np.random.Generator, rows: int, num_epsilon: int, horizon: int, action_dim: int,
                      kind: str) -> np.ndarray:
    """Probe vectors (rows * num_epsilon, Ta, Da) float32, row b * num_epsilon + e for chunk b: Rademacher
    (+-1 with equal odds) or standard normal, as upstream's likelihood draws them per call."""
    shape = (rows * num_epsilon, horizon, action_dim)
    if kind == "Rademacher":
        return (rng.integers(0, 2, shape) * 2 - 1).astype(np.float32)
    if kind == "Gaussian":
        return rng.standard_normal(shape).astype(np.float32)
    raise ValueError(f"unknown Hutchinson probe type {kind!r}; choose one of {', '.join(HUTCHINSON_TYPES)}")
