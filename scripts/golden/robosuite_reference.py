"""Reference trajectories of the four robomimic tasks from robosuite 1.4.1 UNPATCHED on a MuJoCo it was
made for (3.9.0, the newest it runs on), for tests/golden/test_robosuite_reference.py: the project's
patched robosuite on its own MuJoCo (4.x) must reproduce them.

Run it with a Python that has mujoco==3.9.0, robosuite==1.4.1 (--no-deps), numba, scipy, pillow,
termcolor and opencv-python-headless, NOT the project's .venv; it imports nothing of the project:

    python3 -m venv /tmp/venv39 && /tmp/venv39/bin/pip install mujoco==3.9.0 numba scipy pillow termcolor \\
        opencv-python-headless && /tmp/venv39/bin/pip install --no-deps robosuite==1.4.1
    /tmp/venv39/bin/python scripts/golden/robosuite_reference.py --out tests/golden/fixtures

Each task is built as robomimic builds it for state observations (upstream DPPO's path: the env_meta's
env_kwargs, renderers and cameras off, object observations on, ignore_done; hard_reset then turned off),
from numpy's global RNG seeded with MODEL_SEED; reset after seeding it with RESET_SEED; then driven by
ACTIONS(task): per arm, PURE_X_STEPS steps of a pure +x position delta of 1 with the gripper open, then
seeded uniform actions in [-1, 1]. Recorded per step: upstream's low-dim observation (the configs'
low_dim_keys, "object" = robosuite's object-state), the reward, each arm's end-effector position and
its controller's position goal.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TASKS = ("lift", "can", "square", "transport")
MODEL_SEED, RESET_SEED, ACTION_SEED = 42, 7, 3
PURE_X_STEPS, RANDOM_STEPS = 12, 28
STATE_ONLY = {"has_renderer": False, "has_offscreen_renderer": False, "ignore_done": True, "use_object_obs": True,
              "use_camera_obs": False, "camera_depths": False}


def low_dim_keys(task: str) -> list[str]:
    arms = (0, 1) if task == "transport" else (0,)
    return [f"robot{r}_{k}" for r in arms for k in ("eef_pos", "eef_quat", "gripper_qpos")] + ["object"]


def actions(task: str) -> np.ndarray:
    """(T, Da): per arm [dx dy dz dax day daz gripper]; first +x only with the gripper open (-1), then random."""
    arms = 2 if task == "transport" else 1
    pure = np.tile(np.array([1.0, 0, 0, 0, 0, 0, -1.0] * arms), (PURE_X_STEPS, 1))
    rand = np.random.RandomState(ACTION_SEED).uniform(-1, 1, (RANDOM_STEPS, 7 * arms))
    return np.concatenate([pure, rand])


def run(task: str) -> dict[str, np.ndarray]:
    import robosuite

    meta = json.loads((REPO / "data/robomimic/env_meta" / f"{task}.json").read_text())
    np.random.seed(MODEL_SEED)
    env = robosuite.make(meta["env_name"], **{**meta["env_kwargs"], **STATE_ONLY})
    env.hard_reset = False
    np.random.seed(RESET_SEED)
    raw = env.reset()

    def flat(raw: dict) -> np.ndarray:
        return np.concatenate([raw["object-state" if k == "object" else k] for k in low_dim_keys(task)])

    obs, rewards, eef, goal = [flat(raw)], [], [], []
    for a in actions(task):
        raw, reward, _, _ = env.step(a)
        obs.append(flat(raw))
        rewards.append(reward)
        eef.append([np.array(env.sim.data.site_xpos[r.eef_site_id]) for r in env.robots])
        goal.append([np.array(r.controller.goal_pos) for r in env.robots])
    return {f"{task}/obs": np.array(obs), f"{task}/reward": np.array(rewards), f"{task}/eef_pos": np.array(eef),
            f"{task}/goal_pos": np.array(goal), f"{task}/actions": actions(task)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/golden/fixtures")
    args = parser.parse_args()
    import mujoco
    import robosuite

    arrays: dict[str, np.ndarray] = {}
    for task in TASKS:
        arrays.update(run(task))
    np.savez_compressed(args.out / "robosuite_reference.npz", **arrays)
    meta = {"mujoco": mujoco.__version__, "robosuite": robosuite.__version__, "numpy": np.__version__,
            "model_seed": MODEL_SEED, "reset_seed": RESET_SEED, "action_seed": ACTION_SEED,
            "pure_x_steps": PURE_X_STEPS, "random_steps": RANDOM_STEPS,
            "low_dim_keys": {t: low_dim_keys(t) for t in TASKS}}
    (args.out / "robosuite_reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out / 'robosuite_reference.npz'} (mujoco {mujoco.__version__}, "
          f"robosuite {robosuite.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
