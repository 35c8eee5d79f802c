"""Reading the golden fixtures and judging ours against upstream's numbers.

The rule lives in shared/tolerances.py (`judge_golden`), written once for the golden and the parity
gate: upstream ran each computation twice on the same float32 inputs, in float32 (as it runs) and in
float64; ours (float32, its own order of operations) may be off upstream's float32 result by about
as much again, so

    max|ours - up32|  <=  K_GOLDEN * ( max|up32 - up64|  +  eps32 * scale ),   K_GOLDEN = 8

with scale = max|up64|, or the summands' scale for a mean that cancels far below them (approx_kl,
pg_loss: `operand_scale`). Discrete outputs (integers, booleans) must be equal. Nothing here is
widened per test: a check that needs more than this budget is a disagreement with upstream,
reported, not hidden. Every check's margin (distance / budget) goes to tests/margins.py.

Gradients are compared as one vector per network (`assert_gradient_matches_upstream`): the
gradient of a loss w.r.t. all of actor_ft's (or the critic's) parameters. Backpropagation carries
one float32 error through every tensor of that vector, and a small tensor fed by cancelling
contributions (a time-embedding bias: |g| ~ 5e-4, summed over B*K rows of ~1e-2 terms) inherits
absolute errors set by the larger terms, not by its own size; per tensor, the rule would demand
more than float32 can give there.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from shared.tolerances import K_GOLDEN, judge_golden, operand_scale
from tests import margins

FIXTURES = Path(__file__).parent / "fixtures"


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


def _judge(label: str, ours: np.ndarray, up32: np.ndarray, up64: np.ndarray, operand: float, note: str = "") -> None:
    try:
        v = judge_golden(ours, up32, up64, operand)
    except ValueError as e:  # shapes differ: no distance, the check fails outright
        margins.record("golden", label, float("inf"), 0.0)
        raise AssertionError(f"{label}: {e}") from None
    margins.record("golden", label, v.distance, v.budget)
    assert v.ok, (f"{label}: max|ours - upstream32| = {v.distance:.3g} exceeds the budget {v.budget:.3g} "
                  f"(K={K_GOLDEN:g} x (max|up32 - up64| + eps32 x scale {v.scale:.3g})){note}")


def assert_matches_upstream(ours: object, case: Case, key: str, what: str = "",
                            advantages: np.ndarray | None = None, normalized: bool = True) -> None:
    """ours vs case.up32[key] within the budget measured from case.up32[key] vs case.up64[key];
    advantages (and whether the loss normalised them): the summands' scale of a pg_loss."""
    up32 = case.up32[key]
    ours = np.asarray(ours)
    label = f"{case.section}/{case.name}/{key}{' ' + what if what else ''}"
    if up32.dtype.kind in "biu":  # discrete: equal (margin 0) or not (margin inf)
        equal = ours.shape == up32.shape and np.array_equal(ours, up32)
        margins.record("golden", label, 0.0 if equal else float("inf"), 0.0)
        np.testing.assert_array_equal(ours, up32, err_msg=label)
        return
    _judge(label, ours, up32, case.up64[key], operand_scale(key, advantages, normalized))


def assert_gradient_matches_upstream(ours: dict[str, np.ndarray], case: Case, prefix: str, what: str = "") -> None:
    """The rule above on the concatenated gradient of every parameter under prefix (e.g. 'grad/actor_ft.')."""
    keys = sorted(k for k in case.up32 if k.startswith(prefix))
    assert keys, f"{case.name}: no upstream gradients under {prefix}"
    assert set(keys) == {k for k in ours if k.startswith(prefix)}, f"{case.name}: gradient names differ"
    vec = {g: np.concatenate([np.ravel(np.asarray(src[k], np.float64)) for k in keys])
           for g, src in (("ours", ours), ("up32", case.up32), ("up64", case.up64))}
    worst = max(keys, key=lambda k: float(np.max(np.abs(np.asarray(ours[k], np.float64) - case.up32[k]), initial=0)))
    _judge(f"{case.section}/{case.name}/{prefix}*{' ' + what if what else ''}", vec["ours"], vec["up32"], vec["up64"],
           0.0, f"; worst tensor {worst}")


def patch_everywhere(monkeypatch: pytest.MonkeyPatch, module: object, name: str, new: object) -> list[str]:
    """Replace module.<name> and every binding of the same object in our packages' loaded modules
    (a `from module import name` copy); returns the modules patched."""
    old = getattr(module, name)
    patched = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or mod_name.split(".")[0] not in ("shared", "core_torch", "core_tf", "dppo", "tests"):
            continue
        if getattr(mod, name, None) is old:
            monkeypatch.setattr(mod, name, new)
            patched.append(mod_name)
    assert module.__name__ in patched
    return patched
