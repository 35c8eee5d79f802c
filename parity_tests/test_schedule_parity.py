"""Constants both frameworks run with equal shared/'s float64 tables; LR schedules too."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dppo.parity.engine import lr_values
from parity_tests.twins import twin_pair
from shared import tolerances as tol
from shared.diffusion.schedule import ddpm_tables
from shared.param_spec import DiffusionMLPConfig
from shared.settings import DiffusionConfig, LRSchedulerConfig


def _rel(a, b) -> float:
    return tol.relative_diff(np.asarray(a), np.asarray(b))


@given(steps=st.integers(1, 200), use_ddim=st.booleans(), data=st.data())
def test_diffusion_tables_in_both_frameworks_equal_shared(steps, use_ddim, data):
    ddim_steps = data.draw(st.integers(1, steps)) if use_ddim else None
    cfg = DiffusionConfig(DiffusionMLPConfig(2, 2, 3, 8, (4,)), 2, 3, 2, denoising_steps=steps,
                          use_ddim=use_ddim, ddim_steps=ddim_steps)
    th, tf_, _ = twin_pair(cfg, 0)
    ref = ddpm_tables(steps)
    for name in ("sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod"):
        assert _rel(getattr(th, name).numpy(), getattr(ref, name)) <= tol.SCHEDULE_RTOL, name
        assert _rel(getattr(tf_, name).numpy(), getattr(ref, name)) <= tol.SCHEDULE_RTOL, name
    for deterministic in (True, False):
        p_th, p_tf = th.plan(deterministic, 0.1), tf_.plan(deterministic, 0.1)
        for field in ("timesteps", "recon_x", "recon_eps", "mean_x0", "mean_xt", "std"):
            np.testing.assert_array_equal(getattr(p_th, field), getattr(p_tf, field))


@st.composite
def lr_schedules(draw: st.DrawFn) -> dict:
    first = draw(st.integers(2, 40))
    return {
        "first_cycle_steps": first,
        "warmup_steps": draw(st.integers(0, first - 1)),
        "min_lr": draw(st.sampled_from([0.0, 1e-5, 1e-4])),
        "cycle_mult": draw(st.sampled_from([1.0, 1.5, 2.0])),
        "gamma": draw(st.sampled_from([1.0, 0.9, 0.5])),
    }


@given(sched=lr_schedules(), max_lr=st.sampled_from([1e-3, 3e-4]))
def test_lr_an_optimizer_receives_matches_shared_over_three_cycles(sched, max_lr):
    first, mult = sched["first_cycle_steps"], sched["cycle_mult"]
    num = int(math.ceil(first * (1 + mult + mult**2))) + 2
    lrs = lr_values(LRSchedulerConfig(**sched), max_lr, num)
    np.testing.assert_allclose(lrs["torch"], lrs["shared"], rtol=tol.SCHEDULE_RTOL, atol=0)
    np.testing.assert_allclose(lrs["tf"], lrs["shared"], rtol=tol.SCHEDULE_RTOL, atol=1e-12)
    # the third cycle was reached, with its decayed peak
    assert lrs["shared"].max() <= max_lr + 1e-15


def test_lr_strategy_reaches_restarts_and_decay():
    sched = {"first_cycle_steps": 10, "warmup_steps": 2, "min_lr": 1e-5, "cycle_mult": 2.0, "gamma": 0.5}
    lrs = lr_values(LRSchedulerConfig(**sched), 1e-3, 75)["tf"]
    peaks = [i for i in range(1, 74) if lrs[i] > lrs[i - 1] and lrs[i] >= lrs[i + 1]]
    assert len(peaks) >= 3
    np.testing.assert_allclose(lrs[peaks[:3]], [1e-3, 5e-4, 2.5e-4], rtol=1e-5)


