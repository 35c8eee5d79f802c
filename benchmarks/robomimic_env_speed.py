"""Env steps per second of the robomimic tasks in the project's vector env (shared/data/envs.py make_vector_env,
as dppo/envs/runtime.py builds it): random actions in chunks of --act-steps env steps per vector step (Lift's
configs: 4), one env in this process (SyncVectorEnv) and N envs in N worker processes (env.asynchronous). The
build and first reset are timed apart; steps/s counts the timed steps only.

    .venv/bin/python benchmarks/robomimic_env_speed.py --tasks lift,can --envs 1,2 --out speed.txt
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from shared.data.envs import EnvSpec, make_vector_env
from shared.data.robomimic import RobomimicSuite, default_low_dim_keys

HEAD = (f"{'task':<10}{'mode':<8}{'envs':>5}{'build+reset s':>15}{'env steps':>11}{'seconds':>9}"
        f"{'env steps/s':>13}{'per env/s':>11}")


def measure(task: str, n: int, asynchronous: bool, act_steps: int, warmup: int, vec_steps: int) -> str:
    spec = EnvSpec(task, n, 1, act_steps, 300, None, asynchronous,
                   RobomimicSuite(task, default_low_dim_keys(task), 0))
    t0 = time.perf_counter()
    venv = make_vector_env(spec)
    venv.reset(seed=list(range(n)))
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    shape = venv.action_space.shape
    try:
        for _ in range(warmup):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        t0 = time.perf_counter()
        for _ in range(vec_steps):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        seconds = time.perf_counter() - t0
    finally:
        venv.close()
    steps = vec_steps * n * act_steps
    mode = "procs" if asynchronous else "inproc"
    return (f"{task:<10}{mode:<8}{n:>5}{build:>15.1f}{steps:>11}{seconds:>9.2f}{steps / seconds:>13.0f}"
            f"{steps / seconds / n:>11.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="lift,can,square,transport")
    p.add_argument("--envs", default="1,2", help="worker-process counts to time (besides one env in-process)")
    p.add_argument("--vec-steps", type=int, default=40, help="timed vector steps per configuration")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--act-steps", type=int, default=4)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    lines = [f"# {os.cpu_count()} CPUs; act_steps={a.act_steps}; {a.vec_steps} timed vector steps after "
             f"{a.warmup} warm-up; random actions", HEAD]
    print("\n".join(lines), flush=True)
    for task in a.tasks.split(","):
        for n, asynchronous in [(1, False)] + [(int(k), True) for k in a.envs.split(",")]:
            lines.append(measure(task, n, asynchronous, a.act_steps, a.warmup, a.vec_steps))
            print(lines[-1], flush=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":  # spawned workers import this module: build envs in the parent only
    main()
