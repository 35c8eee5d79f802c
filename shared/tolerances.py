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
DIAGNOSTIC_RTOL = 1e-3  # approx_kl ~ logratio^2 / 2 is a difference of nearly equal numbers; no gradient flows


def loss_term_rtol(name: str) -> float:
    return DIAGNOSTIC_RTOL if name in ("approx_kl", "clipfrac") else LOSS_RTOL
SCALE_FLOOR = 1e-6


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def relative_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max|a-b| scaled by the magnitude of the reference b."""
    b64 = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b64))) if b64.size else 0.0, SCALE_FLOOR)
    return max_abs_diff(a, b) / scale
