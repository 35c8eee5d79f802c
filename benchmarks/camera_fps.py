"""Camera frames per second of robomimic camera envs (software OpenGL on the CPU), with 1 and more env workers.

    python -m benchmarks.camera_fps [--task lift] [--workers 1,2] [--steps 60] [--quality fast,robosuite] [--json OUT]

First one camera frame is timed alone (robosuite's sim.render, no physics; the median of 40). Then each
setting builds `workers` envs of the task's `-img` metadata through the project's wrappers (one policy
step = one env step here), in one process for 1 worker and one process per env above that (gymnasium's
AsyncVectorEnv, as env.asynchronous runs them), resets them and times `steps` vector steps of uniform random
actions. Frames/s = envs x steps x cameras / wall time: rendering and physics together, what a pixel run's
rollouts cost. The machine's load changes these numbers a lot; report it beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from shared.data.envs import EnvSpec, make_vector_env
from shared.data.robomimic import EnvMeta, RobomimicImageSuite, env_meta_path
from shared.data.robomimic_image_demos import proprio_keys


def measure(task: str, workers: int, steps: int, quality: str) -> dict[str, Any]:
    meta = EnvMeta.load(f"{task}-img")
    keys = tuple(f"{camera}_image" for camera in meta.cameras)
    suite = RobomimicImageSuite(str(env_meta_path(f"{task}-img")), proprio_keys(task), keys, 0, quality)
    venv = make_vector_env(EnvSpec(task, workers, 1, 1, 10**6, None, workers > 1, suite))
    try:
        venv.reset(seed=list(range(workers)))
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(steps):
            venv.step(rng.uniform(-1, 1, (workers, 1, venv.single_action_space.shape[-1])))
        seconds = time.perf_counter() - start
    finally:
        venv.close()
    frames = workers * steps * len(keys)
    return {"task": task, "workers": workers, "quality": quality, "cameras": len(keys), "steps": steps,
            "seconds": seconds, "frames_per_s": frames / seconds, "env_steps_per_s": workers * steps / seconds,
            "load_average": os.getloadavg()[0]}


def render_ms(task: str, quality: str, frames: int = 40) -> float:
    """Milliseconds per frame of the task's first camera rendered alone (no physics), median of `frames`."""
    from shared.data.robomimic import make_robomimic_image_env

    env = make_robomimic_image_env(task, quality=quality)
    try:
        env.reset(seed=0)
        camera = env.meta.cameras[0]
        height, width = env.meta.camera_size
        times = []
        for _ in range(frames):
            start = time.perf_counter()
            env.robosuite_env.sim.render(camera_name=camera, width=width, height=height)
            times.append(time.perf_counter() - start)
    finally:
        env.close()
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="lift")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--quality", default="fast,robosuite")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for quality in args.quality.split(","):
        ms = render_ms(args.task, quality)
        rows.append({"task": args.task, "quality": quality, "render_ms_per_frame": ms,
                     "load_average": os.getloadavg()[0]})
        print(f"{args.task} {quality:9s} one frame alone: {ms:.1f} ms (median), load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        for workers in (int(w) for w in args.workers.split(",")):
            row = measure(args.task, workers, args.steps, quality)
            rows.append(row)
            print(f"{row['task']} {quality:9s} workers {workers}: {row['frames_per_s']:.1f} frames/s "
                  f"({row['env_steps_per_s']:.1f} env steps/s, {row['cameras']} camera(s)), load average "
                  f"{row['load_average']:.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
