"""The one rule that says when the two frameworks agree: error budgets measured against float64.

Every compared quantity q is computed four times, by each twin in float32 and in float64, on the same
inputs (float32 values) and the same parameters:

    t32, f32   torch and TF in float32 (what users run)
    t64, f64   the same twins, the same code paths, in float64

    s   = max(max|t64|, max|f64|)        the quantity's scale
    e_t = max|t32 - t64|                  float32 rounding measured on torch (this input, this quantity)
    e_f = max|f32 - f64|                  float32 rounding measured on TF

A correct pair of twins differs in float64 only by float64 rounding, which float32 rounding on the
same computation predicts to first order once scaled by eps64 / eps32 (the conditioning of q, and
any amplification such as Adam on near-zero gradients or steps compounding, is in e_t and e_f):

    d64 = max|t64 - f64|  <=  budget = K * ((eps64 / eps32) * (e_t + e_f) + eps64 * s)

The eps64 * s term is the floor for quantities float32 happens to compute exactly (e_t = e_f = 0).
A term that cancels far below its summands (approx_kl, pg_loss) is measured on its summands' scale
(`summand_scale`), where its rounding lives.
A change of the math in one twin moves d64 by the size of the change (>= 1e-9 for any change a
float32 user could see), while the budget stays ~1e-15 of the scale: this is the gate.

Why not bound the float32 distance |t32 - f32| by a multiple of (|t32 - ref| + |f32 - ref|): with a
twin as the float64 reference, a drift in the other twin raises its own error term and the bound
holds by the triangle inequality, so that rule cannot fail. The float32 distance is reported
(`d32`), never judged.

What float64 cannot see, a change that alters only one twin's float32 arithmetic (TF32 or bfloat16
matmuls, a float32-only fast path), shows as one twin rounding much worse than the other on most
quantities. The median over all quantities of a gate run of (e_f + eps32 s) / (e_t + eps32 s) must stay
within [1 / K_ROUNDING, K_ROUNDING]. A median, not a per-quantity or per-section ratio: float32 can
legitimately land on the other side of a kink than float64 in one twin only (a ReLU input at ~0
flips its gradient: on the hopper pre-training config at seed 37 TF's float32 loss gradients were 1e5x
further from float64 than torch's, for 10 of the loss section's 17 quantities), and such a kink never
reaches half of a gate run's quantities, while a reduced-precision matmul reaches nearly all.

Multi-step training is judged at every step twice: end to end (e_t, e_f and so the budget grow with
the steps, measured) and teacher-forced (TF restarts each step from torch's parameters and optimizer
state, so one step's disagreement is judged without the compounding of earlier steps).

`dppo parity` and the parity suite both judge with this module; margin = d64 / budget (<= 1 passes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
K = 64.0  # the stated multiple of the measured float rounding: 2016 clean gate runs needed 15.0 (README)
K_ROUNDING = 16.0  # how much worse one twin's float32 rounding may be than the other's (median ratio)
SCHEDULE_RTOL = 1e-6  # float32 tables and learning rates against the float64 tables of shared/
# Exported artefacts exist in float32 only (a SavedModel, a checkpoint file read by the other
# framework): their outputs against the in-memory model they came from, relative to its scale.
SERVING_RTOL = 1e-5
TINY = 1e-300  # scale of an all-zero quantity


@dataclass(frozen=True)
class Verdict:
    """One quantity judged by the rule; every distance relative to the scale s."""

    scale: float
    d32: float  # |t32 - f32| / s  (reported, not judged)
    e_torch: float  # |t32 - t64| / s
    e_tf: float  # |f32 - f64| / s
    d64: float  # |t64 - f64| / s
    budget: float  # K ((eps64/eps32)(e_t + e_f) + eps64)   (relative to s)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.d64) and self.d64 <= self.budget

    @property
    def margin(self) -> float:
        """d64 / budget: how much of its budget the check used (> 1 fails)."""
        return self.d64 / self.budget if math.isfinite(self.d64) else math.inf


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _finite_max_abs(a: np.ndarray) -> float:
    a = np.abs(np.asarray(a, np.float64))
    return float(np.max(a, initial=0.0, where=np.isfinite(a)))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b|, with non-finite entries equal only where both hold the same value."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    if np.all(np.isfinite(diff)):
        return float(diff.max(initial=0.0))
    finite = np.isfinite(a) & np.isfinite(b)
    if not np.array_equal(a[~finite], b[~finite], equal_nan=True):
        return math.inf
    return max_abs_diff(a[finite], b[finite])


def judge(t32: np.ndarray, f32: np.ndarray, t64: np.ndarray, f64: np.ndarray, summand_scale: float = 0.0) -> Verdict:
    """Apply the rule to one quantity (arrays of one shape); summand_scale: see summand_scale()."""
    s = max(_finite_max_abs(t64), _finite_max_abs(f64), summand_scale, TINY)
    e_t, e_f = _distance(t32, t64) / s, _distance(f32, f64) / s
    return Verdict(scale=s, d32=_distance(t32, f32) / s, e_torch=e_t, e_tf=e_f, d64=_distance(t64, f64) / s,
                   budget=K * ((EPS64 / EPS32) * (e_t + e_f) + EPS64))


def summand_scale(name: str, advantages: np.ndarray) -> float:
    """The scale a PPO loss term's rounding lives on when the term cancels far below its summands.

    approx_kl = mean((r - 1) - log r) with r = exp(logratio) ~ 1: both twins round r - 1 and log r
    to ulps of 1 and the difference leaves ~1e-6, so its rounding in float32 and in float64 is a single
    draw of a few ulps of 1, not of 1e-6. Judged on its own scale, the measured float32 error is then
    a lucky near-zero often enough to flake (2 of 112 seeds of the hopper fine-tuning config, margin
    1.64, before this floor). pg_loss = mean(max(-A r, -A clip(r))) likewise cancels to below its
    summands' size, mean|A| (advantages normalised, as the loss does). Other terms: no floor."""
    if name.startswith("approx_kl"):
        return 1.0
    if name.startswith("pg_loss"):
        a = np.asarray(advantages, np.float64)
        return float(np.mean(np.abs((a - a.mean()) / (a.std(ddof=1) + 1e-8)))) if a.size > 1 else 1.0
    return 0.0


def rounding_ratio(verdicts: Sequence[Verdict]) -> float:
    """Median over quantities of (e_f + eps32) / (e_t + eps32): > 1 when TF rounds worse."""
    ratios = [(v.e_tf + EPS32) / (v.e_torch + EPS32) for v in verdicts
              if math.isfinite(v.e_torch) and math.isfinite(v.e_tf)]
    return float(np.median(ratios)) if ratios else 1.0


def relative_diff(a: np.ndarray, b: np.ndarray, floor: float = 1e-6) -> float:
    """max|a-b| scaled by the magnitude of the reference b (at least `floor`): for fixed tables
    (schedules) compared with shared/'s float64 values, where no float64 twin run is needed."""
    b64 = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b64))) if b64.size else 0.0, floor)
    return max_abs_diff(a, b) / scale
