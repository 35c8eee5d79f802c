"""The one error-budget rule (shared/tolerances.py) and the margin ledger (tests/margins.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared import tolerances as tol
from tests import margins


def test_a_cancelling_mean_is_judged_on_its_summands_scale_not_on_its_own_value():
    """The AVX2 report's numbers: upstream's float32 approx_kl landed 2.27e-9 from its float64 run (the old
    fixtures), ours 3.07e-8 from upstream's float32 value. On its own ~1e-2 scale that failed; on the scale
    of r ~ 1 it is a fraction of one ulp, while a drift of the value by 1e-5 still fails by far."""
    up64 = 0.0122
    up32 = up64 + 2.27e-9
    ours = up32 + 3.07e-8
    assert not tol.judge_golden(ours, up32, up64).ok
    scale = tol.operand_scale("approx_kl")
    verdict = tol.judge_golden(ours, up32, up64, scale)
    assert verdict.ok and verdict.margin < 0.1
    assert not tol.judge_golden(up32 + 1e-5, up32, up64, scale).ok


def test_pg_loss_scale_is_the_mean_size_of_the_advantages_the_loss_uses():
    a = np.array([1.0, -3.0, 2.0, 4.0])
    assert tol.operand_scale("pg_loss", a, normalized=False) == pytest.approx(2.5)
    z = (a - a.mean()) / (a.std(ddof=1) + 1e-8)
    assert tol.operand_scale("pg_loss update 2", a) == pytest.approx(np.mean(np.abs(z)))
    with pytest.raises(ValueError, match="advantages"):
        tol.operand_scale("pg_loss")
    assert tol.operand_scale("v_loss", a) == 0.0


def test_golden_and_parity_budgets_are_the_same_rule_in_their_precisions():
    up32, up64 = np.array([1.0, 2.0 + 1e-7]), np.array([1.0, 2.0])
    g = tol.judge_golden(up32, up32, up64)
    assert g.budget == pytest.approx(tol.allowed_error(1e-7, 2.0, tol.EPS32, tol.K_GOLDEN))
    t32, f32 = np.array([2.0 + 1e-7]), np.array([2.0 - 2e-7])
    t64, f64 = np.array([2.0]), np.array([2.0 + 1e-15])
    p = tol.judge(t32, f32, t64, f64)
    e_t, e_f = 1e-7 / 2.0, 2e-7 / 2.0
    assert p.budget == pytest.approx(tol.allowed_error((tol.EPS64 / tol.EPS32) * (e_t + e_f), 1.0, tol.EPS64,
                                                       tol.K_PARITY))
    assert p.ok and p.margin == pytest.approx(p.d64 / p.budget)


def test_golden_shapes_must_agree_and_non_finite_values_must_match():
    with pytest.raises(ValueError, match="differs from upstream"):
        tol.judge_golden(np.zeros(3), np.zeros(2), np.zeros(2))
    assert tol.judge_golden(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), np.array([np.nan, 1.0])).ok
    assert not tol.judge_golden(np.array([np.inf, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 1.0])).ok


def test_margin_ledger_reports_budget_use_and_the_weakest_deliberate_drift(monkeypatch):
    monkeypatch.setattr(margins, "LEDGER", [])
    margins.start_test("t.py::test_a", False)
    margins.record("golden", "a", 1.0, 4.0)
    margins.record("golden", "b", 3.0, 4.0)
    margins.start_test("t.py::test_drift_x", True)
    margins.record("golden", "a", 1.0, 4.0)  # the unpatched run first
    margins.record("golden", "a", 400.0, 4.0)  # the drift: caught 100x over
    margins.start_test("t.py::test_drift_y", True)
    margins.record("golden", "c", math.inf, 0.0)  # a shape mismatch
    margins.start_test("", False)
    lines = margins.summary()
    assert lines[0].startswith("golden margins: 2 checks, 0 past their budget, worst 0.750 b; 0.250 a")
    assert "2 tests, weakest catch margin 100 (a; test_drift_x)" in lines[1]
    sent = margins.rows()  # what a pytest-xdist worker hands the controller
    margins.LEDGER.clear()
    margins.add_rows(sent)
    assert margins.summary() == lines
