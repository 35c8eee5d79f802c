"""PNG grids of exactly what an image policy sees: the uint8 frames of a camera env after its wrappers (the
network's own scaling, x / 255 - 0.5, is an affine map of these values), or of an image dataset.

A grid has one row per episode (or env) and one column per time step; a frame of several cameras (stacked
on the channel axis, 3 channels each) is shown as its cameras side by side. Tiles are separated by white
lines and drawn at their native size times `zoom` (nearest neighbour, so pixels stay pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.checkpoint import atomic_write
from shared.data.envs import EnvSpec
from shared.errors import ConfigError

BORDER = 2  # pixels of white between tiles


def frame_grid(frames: np.ndarray, zoom: int = 1) -> np.ndarray:
    """frames (R, K, 3 * cameras, H, W) uint8 -> (rows, cols, 3) uint8 image: R rows of K steps, each step's
    cameras side by side."""
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[2] % 3 or frames.dtype != np.uint8:
        raise ConfigError(f"frames must be uint8 (rows, steps, 3 * cameras, H, W), got {frames.dtype} "
                          f"{tuple(frames.shape)}")
    R, K, C, H, W = frames.shape
    tiles = frames.reshape(R, K * C // 3, 3, H, W).transpose(0, 1, 3, 4, 2)  # (R, K * cameras, H, W, 3)
    tiles = tiles.repeat(zoom, axis=2).repeat(zoom, axis=3)
    h, w = H * zoom, W * zoom
    n = tiles.shape[1]
    grid = np.full((R * (h + BORDER) - BORDER, n * (w + BORDER) - BORDER, 3), 255, np.uint8)
    for r in range(R):
        for c in range(n):
            grid[r * (h + BORDER): r * (h + BORDER) + h, c * (w + BORDER): c * (w + BORDER) + w] = tiles[r, c]
    return grid


def write_grid(frames: np.ndarray, path: str | Path, zoom: int) -> str:
    """frames (R, K, 3 * cameras, H, W) uint8 -> their grid written as a PNG at path; the line saying what it holds."""
    write_png(path, frame_grid(frames, zoom))
    rows, steps, channels, height, width = frames.shape
    return f"wrote {path}: {rows} rows of {steps} steps, {channels // 3} camera(s) of {height}x{width} each"


def spaced_steps(length: int, steps: int) -> np.ndarray:
    """`steps` indices spread evenly over 0..length-1, first and last included (repeated when length < steps)."""
    return np.linspace(0, length - 1, steps).round().astype(int)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """(rows, cols, 3) uint8 -> an RGB PNG file."""
    from PIL import Image

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: Image.fromarray(np.ascontiguousarray(image), "RGB").save(tmp, format="PNG"))


def dataset_frames(train_npz: str | Path, episodes: int, steps: int) -> np.ndarray:
    """An image dataset's frames (upstream's layout: `images` (N, C, H, W) beside `states`): the first
    `episodes` episodes at `steps` evenly spaced steps each -> (episodes, steps, C, H, W) uint8."""
    path = Path(train_npz)
    path = path / "train.npz" if path.is_dir() else path
    try:
        data = np.load(path)
        images, lengths = data["images"], data["traj_lengths"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path} is not an image dataset with images and traj_lengths ({exc})") from None
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = []
    for start, length in list(zip(starts, lengths))[:episodes]:
        rows.append(images[start + spaced_steps(length, steps)])  # (K, C, H, W)
    return np.stack(rows)


def env_frames(spec: EnvSpec, steps: int, stride: int, seed: int) -> tuple[np.ndarray, float]:
    """Frames a policy would get from the spec's envs (its wrappers and normalization applied): each env
    reset with seed + i, then driven by uniform random policy actions in [-1, 1]; the newest frame of the
    observation history every `stride` policy steps -> ((n_envs, steps, C, H, W) uint8, camera frames
    rendered per second of stepping)."""
    import time

    from shared.data.envs import make_env

    rng = np.random.default_rng(seed)
    rows = []
    frames, seconds = 0, 0.0
    for i in range(spec.n_envs):
        env = make_env(spec)
        try:
            start = time.perf_counter()
            obs, _ = env.reset(seed=seed + i)
            if not isinstance(obs, dict):
                raise ConfigError(f"{spec.name}'s envs have no camera observations")
            row = [obs["rgb"][-1]]
            while len(row) < steps:
                for _ in range(stride):
                    obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
                row.append(obs["rgb"][-1])
            seconds += time.perf_counter() - start
            frames += env.unwrapped.frames
        finally:
            env.close()
        rows.append(np.stack(row))
    return np.stack(rows), frames / seconds
