"""The one place that says how close the two frameworks must be (float32).

A difference is measured relative to the scale of the reference tensor:
    rel = max|a - b| / max(max|b|, floor)
so values near zero do not inflate it. Parity tests and `dppo parity` both read these.
"""

from __future__ import annotations

import numpy as np

FORWARD_RTOL = 1e-5  # layer outputs, losses, single reverse steps
GRADIENT_RTOL = 1e-4  # gradients w.r.t. inputs and parameters
CHAIN_RTOL = 1e-5  # whole sampling chains, every intermediate x_t
TRAINING_RTOL = 1e-4  # parameters after several optimizer steps
SCHEDULE_RTOL = 1e-6  # float32 tables and learning rates vs float64 shared/
LOSS_RTOL = 1e-4  # scalar losses reduced over many rows (PPO terms)
DIAGNOSTIC_RTOL = 1e-3  # clipfrac: a fraction of elements; one element at the clip boundary may flip
SCALE_FLOOR = 1e-6
EPS32 = float(np.finfo(np.float32).eps)
# approx_kl = mean((r - 1) - log r) with r = exp(logratio) ~ 1: float32 rounds r - 1 and log r to a
# few ulps *of 1*, and the two nearly cancel, leaving a ~1e-6 value whose own size says nothing about
# its rounding. Its budget is therefore measured on the scale of r (1): 8 float32 ulps of 1.
APPROX_KL_BUDGET = (8 * EPS32, 1.0)  # (rtol, scale floor)


def loss_term_budget(name: str, advantage_scale: float = SCALE_FLOOR) -> tuple[float, float]:
    """(rtol, scale floor) for a PPO loss term: rel = max|a-b| / max(max|b|, floor) must be <= rtol.

    pg_loss = mean(max(-A r, -A clip(r))) is a mean of signed terms of size |A| (r ~ 1) that may
    cancel to far less than their size, so it is measured on the scale of its summands:
    advantage_scale = mean|A| of the batch the loss saw."""
    if name == "approx_kl":
        return APPROX_KL_BUDGET
    if name == "pg_loss":
        return LOSS_RTOL, max(advantage_scale, SCALE_FLOOR)
    return (DIAGNOSTIC_RTOL if name == "clipfrac" else LOSS_RTOL), SCALE_FLOOR


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def relative_diff(a: np.ndarray, b: np.ndarray, floor: float = SCALE_FLOOR) -> float:
    """max|a-b| scaled by the magnitude of the reference b (at least `floor`)."""
    b64 = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b64))) if b64.size else 0.0, floor)
    return max_abs_diff(a, b) / scale
