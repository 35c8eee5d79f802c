"""Pre-training data: min/max normalization, the DPPO npz dataset, chunk indexing and batch order.

A dataset holds E episodes laid end to end: states (N, Do), actions (N, Da), both
already normalized to [-1, 1], and traj_lengths (E,) summing to N. A training sample
is an action chunk of horizon_steps (Ta) steps starting at a valid start, plus the
cond_steps (To) observations ending at that start. Batch order and the diffusion
draws are pure functions of (seed, epoch, batch), so both framework trainers and a
resumed run see the same randomness.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.checkpoint import atomic_write
from shared.errors import DatasetError

EPS = 1e-6
NORMALIZATION_KEYS = ("obs_min", "obs_max", "action_min", "action_max")
DATASET_KEYS = ("states", "actions", "traj_lengths")
IMAGE_KEY = "images"  # camera frames (N, C, H, W) uint8 beside the states (upstream's image datasets)


@dataclass(frozen=True, eq=False)
class Normalization:
    obs_min: np.ndarray  # (Do,) float64
    obs_max: np.ndarray  # (Do,)
    action_min: np.ndarray  # (Da,)
    action_max: np.ndarray  # (Da,)

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        """Raw observations (..., Do) to [-1, 1]."""
        return 2 * ((obs - self.obs_min) / (self.obs_max - self.obs_min + EPS) - 0.5)

    def normalize_action(self, action: np.ndarray) -> np.ndarray:
        """Raw actions (..., Da) to [-1, 1]."""
        return 2 * (action - self.action_min) / (self.action_max - self.action_min + EPS) - 1

    def unnormalize_action(self, action: np.ndarray) -> np.ndarray:
        """Actions in [-1, 1] (..., Da) back to the environment's scale."""
        return (action + 1) / 2 * (self.action_max - self.action_min) + self.action_min

    @classmethod
    def from_data(cls, states: np.ndarray, actions: np.ndarray) -> Normalization:
        """Min/max over axis 0 of states (N, Do) and actions (N, Da)."""
        states, actions = np.asarray(states, np.float64), np.asarray(actions, np.float64)
        return cls(states.min(axis=0), states.max(axis=0), actions.min(axis=0), actions.max(axis=0))

    def save(self, path: str | os.PathLike) -> None:
        arrays = {key: np.asarray(getattr(self, key), np.float64) for key in NORMALIZATION_KEYS}

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(path, write)


def _read_npz(path: str | os.PathLike, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The named arrays of an npz file, or one DatasetError naming the file and the problem."""
    if not Path(path).is_file():
        raise DatasetError(f"{what} not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise DatasetError(f"{what} {path} is a single .npy array, not an .npz archive")
        with data:
            missing = [key for key in keys if key not in data.files]
            if missing:
                have = ", ".join(sorted(data.files)) or "none"
                raise DatasetError(f"{what} {path} has no '{missing[0]}' array (arrays present: {have})")
            return {key: data[key] for key in keys}
    except DatasetError:
        raise
    except Exception as exc:  # not a zip, corrupt member, pickled object arrays
        raise DatasetError(f"{what} {path} is not a readable .npz file: {exc}") from None


def load_normalization(
    path: str | os.PathLike, obs_dim: int | None = None, action_dim: int | None = None
) -> Normalization:
    """Read and check a normalization.npz (obs_min, obs_max, action_min, action_max)."""
    raw = _read_npz(path, NORMALIZATION_KEYS, "normalization file")
    arrays: dict[str, np.ndarray] = {}
    for key, value in raw.items():
        if value.ndim != 1:
            raise DatasetError(f"normalization file {path}: '{key}' has shape {list(value.shape)}, expected 1-D")
        if value.dtype.kind not in "iuf":
            raise DatasetError(f"normalization file {path}: '{key}' has dtype {value.dtype}, expected floats")
        arrays[key] = value.astype(np.float64)
    for name, expected in (("obs", obs_dim), ("action", action_dim)):
        lo, hi = arrays[f"{name}_min"], arrays[f"{name}_max"]
        if lo.shape != hi.shape:
            raise DatasetError(
                f"normalization file {path}: '{name}_min' has {lo.size} entries but '{name}_max' has {hi.size}"
            )
        if expected is not None and lo.size != expected:
            raise DatasetError(
                f"normalization file {path} has {name} dim {lo.size} but the config says {name}_dim={expected}"
            )
    for key, value in arrays.items():
        bad = int(np.count_nonzero(~np.isfinite(value)))
        if bad:
            raise DatasetError(f"normalization file {path}: '{key}' has {bad} non-finite value(s)")
    for name in ("obs", "action"):
        below = np.flatnonzero(arrays[f"{name}_max"] < arrays[f"{name}_min"])
        if below.size:
            raise DatasetError(
                f"normalization file {path}: {name}_max < {name}_min at index {int(below[0])}"
                + (f" (and {below.size - 1} more)" if below.size > 1 else "")
            )
    return Normalization(**arrays)


@dataclass(frozen=True, eq=False)
class TrajectoryDataset:
    states: np.ndarray  # (N, Do) float32, normalized
    actions: np.ndarray  # (N, Da) float32, normalized
    traj_lengths: np.ndarray  # (E,) int64
    path: str
    images: np.ndarray | None = None  # (N, C, H, W) uint8 camera frames, read for an image network only

    @property
    def num_episodes(self) -> int:
        return int(self.traj_lengths.shape[0])


def load_dppo_dataset(
    path: str | os.PathLike,
    obs_dim: int,
    action_dim: int,
    horizon_steps: int,
    max_n_episodes: int | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> TrajectoryDataset:
    """Read and check a DPPO train.npz; keep only the first max_n_episodes episodes if given. image_shape
    (C, H, W): also read its `images` (uint8, kept uint8), which must have that shape per step."""
    raw = _read_npz(path, DATASET_KEYS + ((IMAGE_KEY,) if image_shape is not None else ()), "dataset")
    states, actions, lengths = raw["states"], raw["actions"], raw["traj_lengths"]
    where = f"dataset {path}"
    for key, value in (("states", states), ("actions", actions)):
        if value.ndim != 2:
            raise DatasetError(f"{where}: '{key}' has shape {list(value.shape)}, expected 2-D (steps, dim)")
        if value.dtype.kind not in "iuf":
            raise DatasetError(f"{where}: '{key}' has dtype {value.dtype}, expected floats")
    if states.shape[1] != obs_dim:
        raise DatasetError(f"{where} has obs dim {states.shape[1]} but the config says obs_dim={obs_dim}")
    if actions.shape[1] != action_dim:
        raise DatasetError(f"{where} has action dim {actions.shape[1]} but the config says action_dim={action_dim}")
    if len(states) != len(actions):
        raise DatasetError(f"{where} has {len(states)} states but {len(actions)} actions")
    if lengths.ndim != 1 or lengths.size == 0:
        raise DatasetError(f"{where}: 'traj_lengths' has shape {list(lengths.shape)}, expected a non-empty 1-D array")
    if lengths.dtype.kind not in "iuf":
        raise DatasetError(f"{where}: 'traj_lengths' has dtype {lengths.dtype}, expected integers")
    bad = ~(lengths > 0)
    if lengths.dtype.kind == "f":  # whole numbers stored as floats are accepted
        bad |= ~np.isfinite(lengths) | (lengths != np.floor(lengths))
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{where}: 'traj_lengths' must be positive integers, episode {first} has length {lengths[first]}"
        )
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total != len(states):
        raise DatasetError(f"{where}: 'traj_lengths' sum to {total} but there are {len(states)} states")
    images = raw.get(IMAGE_KEY)
    if images is not None and (images.dtype != np.uint8 or images.shape != (len(states), *image_shape)):
        raise DatasetError(f"{where}: 'images' is {images.dtype} {list(images.shape)}, expected uint8 "
                           f"{[len(states), *image_shape]} (one frame per state, the config's shape_meta)")
    if max_n_episodes is not None:
        if max_n_episodes < 1:
            raise DatasetError(f"{where}: max_n_episodes must be >= 1, got {max_n_episodes}")
        lengths = lengths[:max_n_episodes]
        steps = int(lengths.sum())
        states, actions = states[:steps], actions[:steps]
        images = None if images is None else images[:steps]
    for key, value in (("states", states), ("actions", actions)):
        nonfinite = int(np.count_nonzero(~np.isfinite(value)))
        if nonfinite:
            raise DatasetError(f"{where}: '{key}' has {nonfinite} non-finite value(s)")
    if int(lengths.max()) < horizon_steps:
        raise DatasetError(
            f"{where}: no episode is at least horizon_steps={horizon_steps} long "
            f"(longest of {lengths.size} is {int(lengths.max())}), so no sample can be drawn"
        )
    return TrajectoryDataset(
        states=np.ascontiguousarray(states, np.float32),
        actions=np.ascontiguousarray(actions, np.float32),
        traj_lengths=lengths,
        path=str(path),
        images=None if images is None else np.ascontiguousarray(images),
    )


def stitched_indices(traj_lengths: np.ndarray, horizon_steps: int) -> np.ndarray:
    """(M, 2) int64 rows [start, steps before start in its episode], one per chunk that fits in its episode."""
    if horizon_steps < 1:
        raise ValueError(f"horizon_steps must be >= 1, got {horizon_steps}")
    lengths = np.asarray(traj_lengths, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    parts = [np.zeros((0, 2), np.int64)]
    for offset, length in zip(offsets, lengths):
        before = np.arange(length - horizon_steps + 1, dtype=np.int64)  # empty if the episode is too short
        parts.append(np.stack([offset + before, before], axis=1))
    return np.concatenate(parts, axis=0)


def gather_batch(
    dataset: TrajectoryDataset, rows: np.ndarray, horizon_steps: int, cond_steps: int, img_cond_steps: int = 1
) -> tuple[np.ndarray, Any]:
    """Actions (B, Ta, Da) from each start, states (B, To, Do) ending at it, most recent last; with images,
    the observation {"state": (B, To, Do), "rgb": (B, img_cond_steps, C, H, W) uint8} (upstream's sequence
    dataset: the frames ending at the start, indexed like the states).

    History before the episode's first step repeats that first step.
    """
    rows = np.asarray(rows, np.int64).reshape(-1, 2)  # (B, 2)
    start, before = rows[:, 0:1], rows[:, 1:2]  # (B, 1)
    action_idx = start + np.arange(horizon_steps)  # (B, Ta)

    def history(steps: int) -> np.ndarray:  # (B, steps) indices ending at the start, clamped at the episode's first
        return start - np.minimum(np.arange(steps - 1, -1, -1), before)

    actions = dataset.actions[action_idx].astype(np.float32, copy=False)
    states = dataset.states[history(cond_steps)].astype(np.float32, copy=False)
    if dataset.images is None:
        return actions, states
    return actions, {"state": states, "rgb": dataset.images[history(img_cond_steps)]}


class EpochSampler:
    """Shuffled batches of sample indices, a pure function of (seed, epoch)."""

    def __init__(self, num_samples: int, batch_size: int, seed: int) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def batches(self, epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        return [order[i : i + self.batch_size] for i in range(0, self.num_samples, self.batch_size)]


def training_draws(
    seed: int,
    epoch: int,
    batch_index: int,
    batch_size: int,
    horizon_steps: int,
    action_dim: int,
    denoising_steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Diffusion timesteps t (B,) int64 in [0, denoising_steps) and noise (B, Ta, Da) float32 for one batch."""
    rng = np.random.default_rng([seed, epoch, batch_index, 1])
    t = rng.integers(0, denoising_steps, size=batch_size, dtype=np.int64)
    noise = rng.standard_normal((batch_size, horizon_steps, action_dim), dtype=np.float32)
    return t, noise
