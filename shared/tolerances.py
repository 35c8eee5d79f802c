"""The one rule for every error budget in the project: golden (ours vs upstream) and parity (torch vs TF).

A floating-point result can be trusted to about the rounding of what it is computed from, so every
budget has one shape, written once here (`allowed_error`):

    allowed distance  =  K * ( measured rounding  +  eps * operand scale )

- measured rounding: what float32 rounding does to this very quantity on this very input, measured by
  computing it again in float64 (float32 minus float64 of the same code). Conditioning is inside it:
  a product, a chain of denoising steps or an Adam step that amplifies its inputs' rounding shows an
  amplified measured rounding.
- operand scale: the size of what the quantity is computed from. For most quantities that is the
  quantity itself (max|value|). A mean or sum of terms that cancel far below their own size is the
  exception (`operand_scale`): its float32 rounding lives on the scale of the summands, and its measured
  rounding is a single draw of a few of their ulps that can land near zero by luck. approx_kl =
  mean((r - 1) - log r) with r = exp(logratio) ~ 1 rounds r to ulps of 1 and leaves ~1e-6; pg_loss =
  mean(max(-A r, -A clip(r))) cancels to below mean|A|. Judged on their own tiny values they failed on
  CPUs whose vectorised reductions round differently (golden: 18 torch rows, max|ours - up32| 3.07e-8
  against 2.98e-8, on AVX2 and AVX-512 alike; parity: 2 of 112 seeds).
- eps, K: the precision compared and a stated multiple.

The two gates instantiate it once each:

Golden (`judge_golden`): upstream ran each computation on the same float32 inputs in float32 (as it
runs) and in float64. Ours runs in float32 with its own order of operations, so it may differ from
upstream's float32 result by about upstream's own rounding again:

    max|ours - up32|  <=  K_GOLDEN * ( max|up32 - up64|  +  eps32 * scale ),   scale = max(max|up64|, operand scale)

Integers and booleans must be equal. Gradients are judged as one vector per network: a small tensor
fed by cancelling contributions inherits absolute errors set by the larger terms it sums, which is the
operand-scale argument again, applied to the network's whole gradient.

Parity (`judge`): every compared quantity is computed four times, by each twin in float32 and float64,
on the same float32-valued inputs and parameters (t32, f32, t64, f64), with s = max(max|t64|, max|f64|,
operand scale), e_t = max|t32 - t64| / s and e_f = max|f32 - f64| / s (each twin's own float32
rounding). Correct twins differ in float64 only by float64 rounding, which float32 rounding predicts to
first order once scaled by eps64 / eps32:

    d64 = max|t64 - f64| / s  <=  K_PARITY * ( (eps64 / eps32) * (e_t + e_f)  +  eps64 )

A change of the math in one twin moves d64 by the size of the change (>= 1e-9 for any change a
float32 user could see) while the budget stays ~1e-15 of the scale: this is the gate. The float32
twin distance d32 is reported, never judged: bounding it by the twins' float32 errors against a
float64 twin cannot fail (a drifted twin's own error term grows with the drift).

What float64 cannot see, a change that alters only one twin's float32 arithmetic (TF32 or bfloat16
matmuls, a float32-only fast path), shows as one twin rounding much worse than the other on most
quantities. The median over all quantities of a gate run of (e_f + eps32) / (e_t + eps32) must stay
within [1 / K_ROUNDING, K_ROUNDING]. A median, not a per-quantity or per-section ratio: float32 can
legitimately land on the other side of a kink than float64 in one twin only (a ReLU input at ~0
flips its gradient: on the hopper pre-training config at seed 37 TF's float32 loss gradients were 1e5x
further from float64 than torch's, for 10 of the loss section's 17 quantities), and such a kink never
reaches half of a gate run's quantities, while a reduced-precision matmul reaches nearly all.

Multi-step training is judged at every step twice: end to end (e_t, e_f and so the budget grow with
the steps, measured) and teacher-forced (TF restarts each step from torch's parameters and optimizer
state, so one step's disagreement is judged without the compounding of earlier steps).

Every verdict carries its margin = distance / budget (<= 1 passes), so a budget nearly used up is seen
before a machine that rounds differently breaks it (`scripts/golden/cpu_matrix.sh` runs both gates under
the CPU dispatch settings users have and prints the worst margin of each).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
K_GOLDEN = 8.0  # ours may round about as much again as upstream's float32 run did; 8x that
K_PARITY = 64.0  # 2016 clean parity gate runs needed 15.0 (docs/evidence/parity-gate.md, docs/parity_flake_hunt.txt)
K_ROUNDING = 16.0  # how much worse one twin's float32 rounding may be than the other's (median ratio)
SCHEDULE_RTOL = 1e-6  # float32 tables and learning rates against the float64 tables of shared/
# Exported artefacts exist in float32 only (a SavedModel, a checkpoint file read by the other
# framework): their outputs against the in-memory model they came from, relative to its scale.
SERVING_RTOL = 1e-5
TINY = 1e-300  # scale of an all-zero quantity


def allowed_error(rounding: float, scale: float, eps: float, k: float) -> float:
    """The rule: k x (measured rounding + one ulp (eps) of the operand scale)."""
    return k * (rounding + eps * scale)


def operand_scale(name: str, advantages: np.ndarray | None = None, normalized: bool = True) -> float:
    """The scale a quantity's rounding lives on when it is a mean that cancels far below its summands;
    0.0 for every other quantity (its own size is then its scale).

    approx_kl: its operands are the ratios r ~ 1 (both r - 1 and log r are rounded to ulps of 1).
    pg_loss: its summands -A r have the size of the advantages the loss uses (B,): mean|A|, after the
    loss's own normalisation when `normalized`. Names may carry a suffix ("approx_kl update 2")."""
    if name.startswith("approx_kl"):
        return 1.0
    if name.startswith("pg_loss"):
        if advantages is None:
            raise ValueError("pg_loss is judged on its advantages' scale: pass them")
        a = np.asarray(advantages, np.float64).ravel()
        if a.size < 2:
            return 1.0
        if normalized:
            a = (a - a.mean()) / (a.std(ddof=1) + 1e-8)
        return float(np.mean(np.abs(a)))
    return 0.0


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


# ---------------------------------------------------------------- golden: ours vs upstream's own code


@dataclass(frozen=True)
class GoldenVerdict:
    """One quantity of ours against upstream's float32 and float64 runs (absolute units)."""

    scale: float  # max(max|up64|, operand scale)
    distance: float  # max|ours - up32|
    rounding: float  # max|up32 - up64|: upstream's own float32 rounding on this input
    budget: float  # K_GOLDEN (rounding + eps32 scale)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.distance) and self.distance <= self.budget

    @property
    def margin(self) -> float:
        """distance / budget: how much of its budget the check used (> 1 fails)."""
        return self.distance / self.budget if self.budget > 0 and math.isfinite(self.distance) else math.inf


def judge_golden(ours: np.ndarray, up32: np.ndarray, up64: np.ndarray, operand: float = 0.0) -> GoldenVerdict:
    """Apply the rule to one float quantity of ours (float32) against upstream's two runs; operand:
    `operand_scale` of the quantity. Shapes must agree (ValueError otherwise)."""
    ours, up32, up64 = (np.asarray(a, np.float64) for a in (ours, up32, up64))
    if ours.shape != up32.shape:
        raise ValueError(f"shape {ours.shape} differs from upstream's {up32.shape}")
    scale = max(_finite_max_abs(up64), operand)
    rounding = _distance(up32, up64)
    return GoldenVerdict(scale=scale, distance=_distance(ours, up32), rounding=rounding,
                         budget=allowed_error(rounding, scale, EPS32, K_GOLDEN))


# ---------------------------------------------------------------- parity: torch twin vs TF twin


@dataclass(frozen=True)
class Verdict:
    """One quantity judged by the parity rule; every distance relative to the scale s."""

    scale: float
    d32: float  # |t32 - f32| / s  (reported, not judged)
    e_torch: float  # |t32 - t64| / s
    e_tf: float  # |f32 - f64| / s
    d64: float  # |t64 - f64| / s
    budget: float  # K_PARITY ((eps64/eps32)(e_t + e_f) + eps64)   (relative to s)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.d64) and self.d64 <= self.budget

    @property
    def margin(self) -> float:
        """d64 / budget: how much of its budget the check used (> 1 fails)."""
        return self.d64 / self.budget if math.isfinite(self.d64) else math.inf


def judge(t32: np.ndarray, f32: np.ndarray, t64: np.ndarray, f64: np.ndarray, operand: float = 0.0) -> Verdict:
    """Apply the rule to one quantity of the twins (arrays of one shape); operand: `operand_scale`."""
    s = max(_finite_max_abs(t64), _finite_max_abs(f64), operand, TINY)
    e_t, e_f = _distance(t32, t64) / s, _distance(f32, f64) / s
    return Verdict(scale=s, d32=_distance(t32, f32) / s, e_torch=e_t, e_tf=e_f, d64=_distance(t64, f64) / s,
                   budget=allowed_error((EPS64 / EPS32) * (e_t + e_f), 1.0, EPS64, K_PARITY))


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
