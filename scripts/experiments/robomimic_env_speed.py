"""robomimic env speed ("robomimic environments" in docs/evidence/benchmarks.md): robosuite's own step time, what
this project's wrappers add per env step, and vector-env throughput with 1 and 2 worker processes.

    .venv/bin/python scripts/experiments/robomimic_env_speed.py [--task can] [--steps 400]

Rows: `robosuite` is robosuite's env.step alone (OSC_POSE at 20 Hz: 25 MuJoCo steps per env step); `lowdim env`
is the time RobomimicLowdimEnv adds around it (the per-env RNG swap, the observation concatenation, the success
check); `+ chunks` what the rest of one env as the vector envs hold it adds (TimeLimit, normalization, action
chunks of 4, history), per env step; all three timed inside one env as it runs, so a busy machine slows them
alike. `sync xN` / `async xN` are vector envs of N envs stepped with chunks of 4 (async: one worker process per
env), in env steps per second summed over the envs. Random actions in [-1, 1].
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared.data.dataset import Normalization  # noqa: E402
from shared.data.envs import EnvSpec, make_env, make_vector_env  # noqa: E402
from shared.data.robomimic import (  # noqa: E402
    RobomimicSuite,
    default_low_dim_keys,
    env_meta_path,
    make_robomimic_env,
)

ACT_STEPS = 4


def per_step_ms(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return 1e3 * (time.perf_counter() - start) / n


class Timed:
    """Wraps a callable, summing the seconds spent in it."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="can", choices=("lift", "can", "square", "transport"))
    parser.add_argument("--steps", type=int, default=400, help="env steps per measurement")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    probe = make_robomimic_env(args.task)
    da, do = probe.action_space.shape[0], probe.observation_space.shape[0]
    probe.close()
    norm = Normalization(np.full(do, -2.0), np.full(do, 2.0), np.full(da, -1.0), np.full(da, 1.0))
    suite = RobomimicSuite(str(env_meta_path(args.task)), default_low_dim_keys(args.task))
    wrapped = make_env(EnvSpec(args.task, 1, 1, ACT_STEPS, 10 * args.steps, norm, False, suite))
    wrapped.reset(seed=0)
    # one env, its layers timed from inside: robosuite's step, RobomimicLowdimEnv's step around it, and the
    # whole (TimeLimit, normalization, chunks, history) around that; their differences are the overheads
    lowdim = wrapped.env.unwrapped
    inner = lowdim.robosuite_env.step = Timed(lowdim.robosuite_env.step)
    middle = lowdim.step = Timed(lowdim.step)
    n = args.steps // ACT_STEPS
    outer = Timed(wrapped.step)
    for chunk in rng.uniform(-1, 1, (n, ACT_STEPS, da)):
        outer(chunk)
    steps = n * ACT_STEPS
    raw_ms, lowdim_extra, chunk_extra = (1e3 * x / steps for x in (inner.seconds, middle.seconds - inner.seconds,
                                                                    outer.seconds - middle.seconds))
    print(f"task {args.task}, {steps} env steps, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'robosuite':<12} {raw_ms:7.2f} ms/env step {1e3 / raw_ms:8.1f} env steps/s")
    for label, extra in (("lowdim env", lowdim_extra), ("+ chunks", chunk_extra)):
        print(f"{label:<12} {extra:7.3f} ms/env step added ({100 * extra / raw_ms:.1f}% of robosuite's)")
    for asynchronous in (False, True):
        for n in (1, 2):
            venv = make_vector_env(EnvSpec(args.task, n, 1, ACT_STEPS, 10 * args.steps, norm, asynchronous, suite))
            venv.reset(seed=list(range(n)))
            batches = rng.uniform(-1, 1, (args.steps // ACT_STEPS, n, ACT_STEPS, da))
            venv.step(batches[0])  # workers warm
            it = iter(batches[1:])
            ms = per_step_ms(lambda venv=venv, it=it: venv.step(next(it)), len(batches) - 1) / ACT_STEPS
            venv.close()
            label = f"{'async' if asynchronous else 'sync'} x{n}"
            print(f"{label:<12} {ms:7.2f} ms/vector step {n * 1e3 / ms:8.1f} env steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
