"""Where a run's time goes: named phases the fine-tuning loop and the trainers mark (`with phase("env")`),
timed only while a `profiling()` block is open (`dppo bench --job`); otherwise a phase costs one list test.

Phases nest: each phase's time is its own, exclusive of the phases inside it, so the phases of a run add up
to the time they cover and the rest of the wall time is everything unmarked (the loop's own bookkeeping).
Work done beside the loop (env workers stepping while the policy samples: env.overlap) is reported with
`beside(name, seconds)`, apart from the phases: it is not part of the loop's wall time. `count(name)` keeps a
tally (the policy steps the loop took, for env steps per second however the envs were stepped).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class PhaseProfile:
    """Exclusive seconds and entries per phase, in first-seen order, over the iterations after the first
    `warmup` (their compiles and first calls are not the steady state); `wall` is the seconds those
    iterations took, `iterations` how many there were."""

    warmup: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    iterations: int = 0
    wall: float = 0.0
    beside: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _open: list[list] = field(default_factory=list)  # [name, seconds spent in phases inside it]
    _done: int = 0
    _since: float = field(default_factory=time.perf_counter)

    def total(self) -> float:
        return float(sum(self.seconds.values()))

    def iteration_done(self) -> None:
        self._done += 1
        now = time.perf_counter()
        if self._done <= self.warmup:  # forget the warm-up iterations
            self.seconds.clear()
            self.calls.clear()
            self.beside.clear()
            self.counts.clear()
        else:
            self.iterations += 1
            self.wall += now - self._since
        self._since = now


_ACTIVE: list[PhaseProfile] = []


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as `name` in the innermost open profile (nothing when none is open)."""
    if not _ACTIVE:
        yield
        return
    profile = _ACTIVE[-1]
    profile._open.append([name, 0.0])
    tic = time.perf_counter()
    try:
        yield
    finally:
        spent = time.perf_counter() - tic
        _, inner = profile._open.pop()
        profile.seconds[name] += spent - inner
        profile.calls[name] += 1
        if profile._open:
            profile._open[-1][1] += spent


def beside(name: str, seconds: float) -> None:
    """Count `seconds` of work that ran beside the loop (in other processes) as `name` in the open profile."""
    if _ACTIVE:
        _ACTIVE[-1].beside[name] += seconds


def count(name: str, n: int = 1) -> None:
    """Count n events of `name` (e.g. policy steps) in the open profile: a tally, not a phase (no time)."""
    if _ACTIVE:
        _ACTIVE[-1].counts[name] += n


def iteration_done() -> None:
    """The loop finished an iteration (the open profile counts it, or drops it as warm-up)."""
    if _ACTIVE:
        _ACTIVE[-1].iteration_done()


@contextmanager
def profiling(warmup: int = 0) -> Iterator[PhaseProfile]:
    """Open a profile: every phase entered inside the block after the first `warmup` iterations is timed."""
    profile = PhaseProfile(warmup)
    _ACTIVE.append(profile)
    try:
        yield profile
    finally:
        _ACTIVE.remove(profile)
