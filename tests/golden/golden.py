"""Reading the golden fixtures and the one rule that says how close our code must be to upstream.

The rule (`assert_matches_upstream`): upstream ran each computation twice on the same float32
inputs, in float32 (as it runs) and in float64. Their distance measures how much float32 rounding
moves upstream's own result; ours, also float32 but with its own order of operations, may be off
by about as much again. So for every array

    max|ours - up32|  <=  K * ( max|up32 - up64|  +  EPS32 * scale ),   scale = max|up64|

with EPS32 = 2**-23 (float32 machine epsilon) and K = 8, stated once here. The EPS32 * scale
term is one float32 ulp of the largest value, so a computation that happens to round exactly in
float32 (|up32 - up64| = 0) still gets a one-ulp-per-K budget rather than none. Discrete outputs
(integers, booleans) must be equal. Nothing here is widened per test: a check that needs more
than this budget is a disagreement with upstream, reported, not hidden.

Gradients are compared as one vector per network (`assert_gradient_matches_upstream`): the
gradient of a loss w.r.t. all of actor_ft's (or the critic's) parameters. Backpropagation carries
one float32 error through every tensor of that vector, and a small tensor fed by cancelling
contributions (a time-embedding bias: |g| ~ 5e-4, summed over B*K rows of ~1e-2 terms) inherits
absolute errors set by the larger terms, not by its own size; per tensor, the rule would demand
more than float32 can give there.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"
EPS32 = float(np.finfo(np.float32).eps)
K = 8.0


@cache
def manifest() -> dict:
    return json.loads((FIXTURES / "manifest.json").read_text())


@cache
def _section(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


class Case:
    """One recorded case: inputs (`inp`), upstream float32 / float64 outputs and its options (`meta`)."""

    def __init__(self, section: str, name: str) -> None:
        self.section, self.name = section, name
        self.meta = manifest()["sections"][section]["cases"][name]
        arrays = _section(section)
        self.inp, self.up32, self.up64 = {}, {}, {}
        for key, value in arrays.items():
            case, group, field = key.split("/", 2)
            if case == name:
                {"in": self.inp, "up32": self.up32, "up64": self.up64}[group][field] = value

    def params(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Canonical float32 params stored as in/param/<name>, optionally only those under prefix."""
        return {k[len("param/"):]: v for k, v in self.inp.items() if k.startswith("param/" + prefix)}


def cases(section: str) -> list[str]:
    return list(manifest()["sections"][section]["cases"])


def budget(up32: np.ndarray, up64: np.ndarray) -> float:
    up32, up64 = np.asarray(up32, np.float64), np.asarray(up64, np.float64)
    if up64.size == 0:
        return 0.0
    return K * (float(np.max(np.abs(up32 - up64))) + EPS32 * float(np.max(np.abs(up64))))


def distance(ours: np.ndarray, up32: np.ndarray) -> float:
    ours, up32 = np.asarray(ours, np.float64), np.asarray(up32, np.float64)
    if ours.shape != up32.shape:
        raise AssertionError(f"shape {ours.shape} differs from upstream's {up32.shape}")
    return float(np.max(np.abs(ours - up32))) if ours.size else 0.0


def assert_matches_upstream(ours: object, case: Case, key: str, what: str = "") -> None:
    """ours vs case.up32[key] within the budget measured from case.up32[key] vs case.up64[key]."""
    up32 = case.up32[key]
    ours = np.asarray(ours)
    label = f"{case.section}/{case.name}/{key}{' ' + what if what else ''}"
    if up32.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, up32, err_msg=label)
        return
    d, b = distance(ours, up32), budget(up32, case.up64[key])
    assert d <= b, (f"{label}: max|ours - upstream32| = {d:.3g} exceeds the budget {b:.3g} "
                    f"(K={K:g} x (max|up32 - up64| + eps32 * max|up64|))")


def assert_gradient_matches_upstream(ours: dict[str, np.ndarray], case: Case, prefix: str, what: str = "") -> None:
    """The rule above on the concatenated gradient of every parameter under prefix (e.g. 'grad/actor_ft.')."""
    keys = sorted(k for k in case.up32 if k.startswith(prefix))
    assert keys, f"{case.name}: no upstream gradients under {prefix}"
    assert set(keys) == {k for k in ours if k.startswith(prefix)}, f"{case.name}: gradient names differ"
    vec = {g: np.concatenate([np.ravel(np.asarray(src[k], np.float64)) for k in keys])
           for g, src in (("ours", ours), ("up32", case.up32), ("up64", case.up64))}
    d, b = distance(vec["ours"], vec["up32"]), budget(vec["up32"], vec["up64"])
    worst = max(keys, key=lambda k: distance(ours[k], case.up32[k]))
    assert d <= b, (f"{case.section}/{case.name}/{prefix}* {what}: max|ours - upstream32| = {d:.3g} (worst {worst}) "
                    f"exceeds the budget {b:.3g}")
