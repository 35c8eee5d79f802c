"""The parity table: twin quantities measured in float32 and float64, judged by shared/tolerances.

A measurement is a function that builds the twins and returns {(section, name): (torch value, tf
value)}; `in_both_precisions` runs it once in float32 and once in float64 and `ParityReport.add`
judges every quantity with the one rule (`shared.tolerances.judge`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared import tolerances as tol

Key = tuple[str, str]  # (section, name)
Quantities = dict[Key, tuple[Any, ...]]  # (torch value, tf value[, operand scale: tolerances.operand_scale])


@contextmanager
def twin_precision(dtype: type[np.floating]) -> Iterator[None]:
    """Both twins build and compute in `dtype` inside the block."""
    from core_tf.runtime.precision import compute_precision as tf_precision
    from core_torch.runtime.precision import compute_precision as torch_precision

    with torch_precision(dtype), tf_precision(dtype):
        yield


def in_both_precisions(measure: Callable[[], Quantities]) -> tuple[Quantities, Quantities]:
    """Run `measure` with both twins built and run in float32, then again in float64."""
    out = []
    for dtype in (np.float32, np.float64):
        with twin_precision(dtype):
            out.append(measure())
    return out[0], out[1]


def probe_quantities(section: str, torch_probe: Any, tf_probe: Any) -> Quantities:
    """Layer outputs, output, input and parameter gradients of one probe pair (names missing in
    one twin become a quantity of shape mismatch, so they fail)."""
    q: Quantities = {}
    for name in sorted(set(torch_probe.layers) | set(tf_probe.layers)):
        q[(f"{section}/forward", name)] = (torch_probe.layers.get(name, _MISSING), tf_probe.layers.get(name, _MISSING))
    q[(f"{section}/forward", "output")] = (torch_probe.output, tf_probe.output)
    for name, g in torch_probe.input_grads.items():
        q[(f"{section}/grad_input", name)] = (g, tf_probe.input_grads.get(name, _MISSING))
    for name, g in torch_probe.param_grads.items():
        q[(f"{section}/grad_param", name)] = (g, tf_probe.param_grads.get(name, _MISSING))
    return q


_MISSING = np.full((0, 0, 0, 0, 0), np.nan)  # a shape no real quantity has


@dataclass
class Row:
    section: str
    name: str
    kind: str  # "twins" (the float64 rule), "rounding" (per-section float32 rounding), "table" (vs shared/)
    value: float  # what is judged: d64 / s, the rounding ratio, or the relative distance to shared/
    limit: float
    d32: float = math.nan  # float32 twin distance / s (reported)
    e_torch: float = math.nan
    e_tf: float = math.nan

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.limit

    @property
    def margin(self) -> float:
        return self.value / self.limit if self.limit > 0 and math.isfinite(self.value) else math.inf


@dataclass
class ParityReport:
    rows: list[Row] = field(default_factory=list)

    def add(self, q32: Quantities, q64: Quantities) -> None:
        """Judge every quantity measured in both precisions; then the float32 rounding of the two twins."""
        verdicts: list[tol.Verdict] = []
        for key, (t32, f32, *_) in q32.items():
            section, name = key
            t64, f64, *floor = q64[key]
            arrays = [np.asarray(a, np.float64) for a in (t32, f32, t64, f64)]
            if len({a.shape for a in arrays}) != 1:
                shapes = " vs ".join(str(list(a.shape)) for a in arrays[:2])
                self.rows.append(Row(section, f"{name} (shape {shapes})", "twins", math.inf, 0.0))
                continue
            v = tol.judge(*arrays, operand=floor[0] if floor else 0.0)
            self.rows.append(Row(section, name, "twins", v.d64, v.budget, v.d32, v.e_torch, v.e_tf))
            verdicts.append(v)
        if verdicts:
            ratio = tol.rounding_ratio(verdicts)
            self.rows.append(Row("float32 rounding", f"median tf/torch ratio over {len(verdicts)} quantities",
                                 "rounding", max(ratio, 1.0 / ratio), tol.K_ROUNDING))

    def add_table(self, section: str, name: str, expected: Any, got: Any, rtol: float) -> None:
        """A fixed table (schedule, learning rates) against shared/'s float64 values."""
        a, b = np.asarray(got, np.float64), np.asarray(expected, np.float64)
        value = tol.relative_diff(a, b) if a.shape == b.shape and np.all(np.isfinite(a)) else math.inf
        self.rows.append(Row(section, name, "table", value, rtol))

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failures

    @property
    def worst(self) -> Row:
        return max(self.rows, key=lambda r: r.margin)

    def table(self) -> str:
        width = max([len(f"{r.section}  {r.name}") for r in self.rows] + [20])
        lines = [f"{'check':<{width}}  {'d32/s':>9}  {'e_torch':>9}  {'e_tf':>9}  {'d64/s':>9}  {'limit':>9}  "
                 f"{'margin':>7}  ok"]
        for r in self.rows:
            lines.append(f"{r.section + '  ' + r.name:<{width}}  {r.d32:>9.2e}  {r.e_torch:>9.2e}  {r.e_tf:>9.2e}  "
                         f"{r.value:>9.2e}  {r.limit:>9.2e}  {r.margin:>7.3f}  {'yes' if r.ok else 'NO'}")
        w = self.worst
        lines.append(f"{len(self.rows)} checks, {len(self.failures)} past their limit; worst margin "
                     f"{w.margin:.3f}: {w.section} {w.name}")
        lines.append("twins rows: d64/s must be <= limit = K((eps64/eps32)(e_torch + e_tf) + eps64), K = "
                     f"{tol.K_PARITY:g} (shared/tolerances.py); rounding row: median tf/torch float32 rounding "
                     f"ratio within {tol.K_ROUNDING:g}x; table rows: relative distance to shared/")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        def clean(x: float) -> float | str | None:
            return None if math.isnan(x) else (x if math.isfinite(x) else "inf")

        w = self.worst
        return {
            "ok": self.ok,
            "num_checks": len(self.rows),
            "num_failures": len(self.failures),
            "worst_margin": clean(w.margin),
            "worst_check": f"{w.section} {w.name}",
            "rule": {"K": tol.K_PARITY, "K_rounding": tol.K_ROUNDING, "eps32": tol.EPS32, "eps64": tol.EPS64},
            "rows": [{"section": r.section, "name": r.name, "kind": r.kind, "value": clean(r.value),
                      "limit": clean(r.limit), "margin": clean(r.margin), "d32": clean(r.d32),
                      "e_torch": clean(r.e_torch), "e_tf": clean(r.e_tf), "ok": r.ok} for r in self.rows],
        }


def twin_report(measure: Callable[[], Quantities]) -> ParityReport:
    """Measure in float32 and float64, judge everything: the one call a parity test needs."""
    report = ParityReport()
    report.add(*in_both_precisions(measure))
    return report
