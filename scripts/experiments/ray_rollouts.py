"""Environment throughput with the env workers in this process (gymnasium's SyncVectorEnv, what fine-tuning
uses by default) and as Ray actors (dppo/envs/ray_vector.py) with 1, 2 and 4 workers, for Hopper and
robomimic Lift: env steps per second (single-env steps: policy steps x envs x act_steps) over a fixed
number of policy steps with random actions in [-1, 1], after a warm-up step. No policy runs: this is the
ceiling the env side puts on a fine-tuning iteration. Prints a markdown table with the machine's load
average before and after (the numbers mean little on a loaded machine; say so where they are recorded).

    .venv/bin/python scripts/experiments/ray_rollouts.py                 # 8 envs, 40 policy steps each
    .venv/bin/python scripts/experiments/ray_rollouts.py --n-envs 16 --steps 100 --workers 1 2 4 8

One local Ray instance is started for the whole run (its start-up time is printed, not counted).
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

from dppo.envs.ray_vector import RayVectorEnv, import_ray, ray_init_kwargs  # noqa: E402
from shared.data.dataset import load_normalization  # noqa: E402
from shared.data.envs import EnvSpec, make_vector_env  # noqa: E402
from shared.data.robomimic import RobomimicSuite, default_low_dim_keys, env_meta_path  # noqa: E402
from shared.settings.run import RayConfig  # noqa: E402


def hopper(n_envs: int) -> EnvSpec:
    """Upstream's Hopper fine-tuning shape: 1 observation, chunks of 4 actions, 1000-step episodes."""
    norm = load_normalization(REPO / "data/hopper-medium-v2/normalization.npz", 11, 3)
    return EnvSpec("hopper-medium-v2", n_envs, 1, 4, 1000, norm)


def lift(n_envs: int) -> EnvSpec:
    """Upstream's Lift fine-tuning shape: 1 observation, chunks of 4 actions, 300-step episodes."""
    norm = load_normalization(REPO / "data/robomimic/lift/normalization.npz", 19, 7)
    suite = RobomimicSuite(str(env_meta_path("lift")), default_low_dim_keys("lift"))
    return EnvSpec("lift", n_envs, 1, 4, 300, norm, False, suite)


TASKS = {"hopper": hopper, "lift": lift}


def steps_per_second(venv, spec: EnvSpec, steps: int, seed: int) -> float:
    """Single-env steps per second over `steps` policy steps (after one untimed step)."""
    venv.reset(seed=[seed + i for i in range(spec.n_envs)])
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps + 1, *venv.action_space.shape)).astype(np.float32)
    venv.step(actions[0])
    tic = time.perf_counter()
    for a in actions[1:]:
        venv.step(a)
    return steps * spec.n_envs * spec.act_steps / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40, help="policy steps per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ray = import_ray()
    load_before = os.getloadavg()
    tic = time.perf_counter()
    ray.init(**ray_init_kwargs(RayConfig(None, max(args.workers))))
    print(f"local Ray instance up in {time.perf_counter() - tic:.1f} s; {os.cpu_count()} cores, "
          f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} (1/5/15 min)")
    header = ["task", "envs", "local (SyncVectorEnv)", *(f"Ray, {w} worker{'s' * (w > 1)}" for w in args.workers)]
    rows = []
    for task in args.tasks:
        spec = TASKS[task](args.n_envs)
        venv = make_vector_env(spec)
        row = [task, str(spec.n_envs), f"{steps_per_second(venv, spec, args.steps, args.seed):.0f}"]
        venv.close()
        for w in args.workers:
            venv = RayVectorEnv(spec, RayConfig(None, w))
            row.append(f"{steps_per_second(venv, spec, args.steps, args.seed):.0f}")
            venv.close()
        rows.append(row)
    ray.shutdown()
    load_after = os.getloadavg()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * 2 + "---:|" * (len(header) - 2))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"env steps/s ({args.steps} policy steps x act_steps 4 per env); load average after "
          f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
