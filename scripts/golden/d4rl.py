"""Section `d4rl`: upstream script/dataset/get_d4rl_dataset.py make_dataset driven on a small synthetic
D4RL-like dict (gym and d4rl stubbed: gym.make returns an env whose get_dataset() is that dict)."""

from __future__ import annotations

import importlib
import logging
import random
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from scripts.golden.common import Context

N, DO, DA = 70, 3, 2


def synthetic(ctx: Context) -> dict[str, np.ndarray]:
    """Episodes ended by terminals and by timeouts, one zero-reward episode, trailing unfinished steps."""
    rng = ctx.rng("d4rl")
    terminals = np.zeros(N, bool)
    timeouts = np.zeros(N, bool)
    terminals[[9, 30]] = True
    timeouts[[19, 45, 61]] = True
    rewards = rng.uniform(0.1, 1.0, N).astype(np.float32)
    rewards[20:31] = 0.0  # episode 20..30 has zero return: dropped
    return {"observations": (rng.standard_normal((N, DO)) * [1, 5, 0.1]).astype(np.float32),
            "actions": rng.uniform(-0.9, 0.7, (N, DA)).astype(np.float32),
            "rewards": rewards, "terminals": terminals, "timeouts": timeouts}


def build(ctx: Context) -> None:
    data = synthetic(ctx)

    class Env:
        action_space = types.SimpleNamespace(sample=lambda: None)

        def reset(self) -> None:
            return None

        def step(self, action: object) -> None:
            return None

        def get_dataset(self) -> dict:
            return {k: v.copy() for k, v in data.items()}

    sys.modules["gym"] = types.SimpleNamespace(make=lambda name: Env())
    sys.modules["d4rl"] = types.ModuleType("d4rl")
    sys.modules["d4rl.gym_mujoco"] = types.ModuleType("d4rl.gym_mujoco")
    script = importlib.import_module("script.dataset.get_d4rl_dataset")
    script.args = types.SimpleNamespace(max_episodes=-1)
    random.seed(ctx.seed)
    with tempfile.TemporaryDirectory() as tmp:
        script.make_dataset("synthetic-v0", tmp, "", 0.0, logging.getLogger("golden"))
        with np.load(Path(tmp) / "train.npz") as z:
            train = {k: z[k] for k in z.files}
        with np.load(Path(tmp) / "normalization.npz") as z:
            norm = {k: z[k] for k in z.files}
    out = {**{f"train/{k}": v for k, v in train.items()}, **{f"norm/{k}": v for k, v in norm.items()}}
    ctx.case("synthetic", {"kind": "d4rl", "val_split": 0.0, "note": "upstream computes in the dataset's float32; "
                           "up64 repeats up32 (no float64 run of a script)"}, data, out, out)
