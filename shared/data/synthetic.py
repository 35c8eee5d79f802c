"""Small synthetic demonstration sets in DPPO's npz layout, for tests and smoke runs.

Actions are a smooth function of the state, so a diffusion policy can actually fit them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shared.checkpoint import atomic_write
from shared.data.dataset import Normalization


def write_synthetic_dataset(out_dir: str | os.PathLike, obs_dim: int, action_dim: int, num_episodes: int = 8,
                            episode_length: tuple[int, int] = (20, 40), seed: int = 0,
                            image_shape: tuple[int, int, int] | None = None) -> Path:
    """Write train.npz (normalized states/actions, traj_lengths) and normalization.npz; returns train.npz.
    image_shape (C, H, W): also `images` (N, C, H, W) uint8, upstream's image layout (random frames, drawn after
    the rest so the states and actions are those of the same seed without images)."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((obs_dim, action_dim)) / np.sqrt(obs_dim)
    lengths = rng.integers(episode_length[0], episode_length[1] + 1, num_episodes)
    states, actions = [], []
    for n in lengths:
        s = np.cumsum(rng.standard_normal((n, obs_dim)) * 0.3, axis=0)  # random walk
        states.append(s)
        actions.append(np.tanh(s @ mixing) + 0.05 * rng.standard_normal((n, action_dim)))
    raw_s, raw_a = np.concatenate(states), np.concatenate(actions)
    norm = Normalization.from_data(raw_s, raw_a)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "states": np.clip(norm.normalize_obs(raw_s), -1, 1).astype(np.float32),
        "actions": np.clip(norm.normalize_action(raw_a), -1, 1).astype(np.float32),
        "traj_lengths": lengths.astype(np.int64),
    }
    if image_shape is not None:
        arrays["images"] = rng.integers(0, 256, (len(raw_s), *image_shape), dtype=np.uint8)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(out / "train.npz", write)
    norm.save(out / "normalization.npz")
    return out / "train.npz"
