"""Cosine annealing with linear warm-up and restarts, as a pure function of the step.

`step` counts scheduler steps taken (upstream steps once per epoch in pre-training
and once per iteration in fine-tuning). Step 0 is the learning rate before any
step: upstream's scheduler sets min_lr there whatever the warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CosineWarmupRestarts:
    first_cycle_steps: int
    max_lr: float
    min_lr: float = 0.001
    warmup_steps: int = 0
    cycle_mult: float = 1.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.first_cycle_steps < 1:
            raise ValueError(f"first_cycle_steps must be >= 1, got {self.first_cycle_steps}")
        if not 0 <= self.warmup_steps < self.first_cycle_steps:
            raise ValueError(
                f"warmup_steps must be in [0, first_cycle_steps={self.first_cycle_steps}), "
                f"got {self.warmup_steps}"
            )
        if self.cycle_mult <= 0:
            raise ValueError(f"cycle_mult must be > 0, got {self.cycle_mult}")

    def position(self, step: int) -> tuple[int, int, int]:
        """(cycle, step_in_cycle, cycle_length) after `step` scheduler steps (step >= 1)."""
        if self.cycle_mult == 1.0:  # equal cycles: closed form (a run of a million steps would walk every cycle)
            return step // self.first_cycle_steps, step % self.first_cycle_steps, self.first_cycle_steps
        in_cycle, length, cycle = step, self.first_cycle_steps, 0
        while in_cycle >= length:
            in_cycle -= length
            cycle += 1
            length = int((length - self.warmup_steps) * self.cycle_mult) + self.warmup_steps
            if length <= self.warmup_steps:
                raise ValueError(
                    f"cycle_mult={self.cycle_mult} shrinks cycle {cycle} to {length} steps, "
                    f"no longer than warmup_steps={self.warmup_steps}"
                )
        return cycle, in_cycle, length

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step == 0:
            return float(self.min_lr)
        cycle, s, length = self.position(step)
        peak = self.max_lr * self.gamma**cycle
        if s < self.warmup_steps:
            return float(self.min_lr + (peak - self.min_lr) * s / self.warmup_steps)
        progress = (s - self.warmup_steps) / (length - self.warmup_steps)
        return float(self.min_lr + (peak - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0)

    def table(self, num_steps: int) -> np.ndarray:
        """Learning rates for steps 0 .. num_steps - 1 (float64), each the value __call__ gives."""
        if self.cycle_mult == 1.0 and self.gamma == 1.0 and num_steps > 2 * self.first_cycle_steps:
            # periodic after step 0: one cycle computed, then repeated (step k >= 1 sits at k mod L of its cycle)
            length = self.first_cycle_steps
            cycle = np.array([self(length + s) for s in range(length)], dtype=np.float64)
            out = cycle[np.arange(num_steps) % length]
            out[0] = self(0)
            return out
        return np.array([self(k) for k in range(num_steps)], dtype=np.float64)
