"""shared.lr_schedule against an independent step-by-step model of upstream's scheduler."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.lr_schedule import CosineWarmupRestarts


class StatefulReference:
    """Upstream's behaviour restated: state advanced one step() at a time.

    Construction performs one internal step (step_in_cycle 0) and then forces min_lr.
    """

    def __init__(self, first, max_lr, min_lr, warmup, mult, gamma):
        self.base_max, self.min, self.warmup, self.mult, self.gamma = max_lr, min_lr, warmup, mult, gamma
        self.length, self.cycle, self.pos = first, 0, 0
        self.lr = min_lr

    def step(self):
        self.pos += 1
        if self.pos >= self.length:
            self.cycle += 1
            self.pos -= self.length
            self.length = int((self.length - self.warmup) * self.mult) + self.warmup
        peak = self.base_max * self.gamma**self.cycle
        if self.pos < self.warmup:
            self.lr = (peak - self.min) * self.pos / self.warmup + self.min
        else:
            frac = (self.pos - self.warmup) / (self.length - self.warmup)
            self.lr = self.min + (peak - self.min) * (1 + math.cos(math.pi * frac)) / 2


@settings(max_examples=60, deadline=None, derandomize=True)
@given(first=st.integers(2, 30), data=st.data(), mult=st.sampled_from([1.0, 1.3, 2.0, 3.0]),
       gamma=st.sampled_from([1.0, 0.8, 0.5]), min_lr=st.sampled_from([0.0, 1e-4]))
def test_pure_function_equals_stateful_scheduler_step_for_step(first, data, mult, gamma, min_lr):
    warmup = data.draw(st.integers(0, first - 1))
    sched = CosineWarmupRestarts(first, 1e-3, min_lr, warmup, mult, gamma)
    ref = StatefulReference(first, 1e-3, min_lr, warmup, mult, gamma)
    for k in range(int(first * (1 + mult + mult**2 + mult**3)) + 3):
        assert sched(k) == pytest.approx(ref.lr, rel=1e-12, abs=1e-18), k
        ref.step()


def test_hopper_pretrain_schedule_values():
    s = CosineWarmupRestarts(first_cycle_steps=3000, max_lr=1e-3, min_lr=1e-4, warmup_steps=1)
    assert s(0) == 1e-4  # before any step: min_lr
    assert s(1) == pytest.approx(1e-3)  # warm-up of one step reaches the peak
    assert s(1500) == pytest.approx(1e-4 + 0.9e-3 * (1 + math.cos(math.pi * 1499 / 2999)) / 2)
    assert s(3000) == 1e-4  # restart
    np.testing.assert_allclose(s.table(4), [1e-4, 1e-3, s(2), s(3)])


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="warmup_steps"):
        CosineWarmupRestarts(10, 1e-3, warmup_steps=10)
    with pytest.raises(ValueError, match="shrinks"):
        CosineWarmupRestarts(4, 1e-3, warmup_steps=0, cycle_mult=0.1)(10)
