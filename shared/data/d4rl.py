"""Convert a D4RL-layout hdf5 file into the DPPO train.npz plus normalization.npz.

The hdf5 holds N transitions in order: observations (N, Do), actions (N, Da),
rewards (N,), terminals (N,), timeouts (N,). An episode ends at every step where
terminals or timeouts is set; steps after the last such step are an unfinished
episode and are dropped. Min/max normalization is taken over every transition in
the file, before any episode is dropped.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from shared.checkpoint import atomic_write
from shared.data.dataset import EPS, Normalization
from shared.errors import DatasetError

HDF5_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


@dataclass(frozen=True)
class ConversionSummary:
    num_episodes: int
    num_transitions: int
    return_mean: float
    return_std: float
    return_min: float
    return_max: float
    obs_dim: int
    action_dim: int
    skipped_zero_reward_episodes: int
    dropped_trailing_steps: int
    paths: tuple[str, ...]  # train.npz, normalization.npz


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"D4RL file not found: {path}")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path} is not an HDF5 file")
    try:
        with h5py.File(path, "r") as f:
            for key in HDF5_KEYS:
                if not isinstance(f.get(key), h5py.Dataset):
                    have = ", ".join(sorted(f.keys())) or "none"
                    raise DatasetError(f"{path} has no '{key}' dataset (top-level entries: {have})")
            return {key: np.asarray(f[key][()]) for key in HDF5_KEYS}
    except DatasetError:
        raise
    except Exception as exc:  # corrupt file, unreadable dataset
        raise DatasetError(f"cannot read HDF5 file {path}: {exc}") from None


def _check(path: Path, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Shapes, lengths and finiteness; per-step arrays flattened to (N,)."""
    arrays = dict(raw)
    for key in ("observations", "actions"):
        if arrays[key].ndim != 2:
            raise DatasetError(f"{path}: '{key}' has shape {list(arrays[key].shape)}, expected 2-D (steps, dim)")
    for key in ("rewards", "terminals", "timeouts"):
        value = arrays[key]
        if value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]
        if value.ndim != 1:
            raise DatasetError(f"{path}: '{key}' has shape {list(value.shape)}, expected 1-D (steps,)")
        arrays[key] = value
    for key, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: '{key}' has dtype {value.dtype}, expected numbers")
    sizes = {key: len(value) for key, value in arrays.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{key} {n}" for key, n in sizes.items())
        raise DatasetError(f"{path}: datasets have different lengths ({listed})")
    for key in ("observations", "actions", "rewards"):
        bad = int(np.count_nonzero(~np.isfinite(arrays[key])))
        if bad:
            raise DatasetError(f"{path}: '{key}' has {bad} non-finite value(s)")
    return arrays


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append '.npz'
            np.savez(f, **arrays)

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise DatasetError(f"cannot write {path}: {exc}") from None


def convert_d4rl_hdf5(
    hdf5_path: str | os.PathLike, out_dir: str | os.PathLike, drop_zero_reward_episodes: bool = True
) -> ConversionSummary:
    """Write out_dir/train.npz and out_dir/normalization.npz from a D4RL hdf5 file."""
    path = Path(hdf5_path)
    data = _check(path, _read_hdf5(path))
    obs, act, rewards = data["observations"], data["actions"], data["rewards"]
    ends = np.flatnonzero((data["terminals"] != 0) | (data["timeouts"] != 0))  # (E,) last step of each episode
    if ends.size == 0:
        raise DatasetError(f"{path}: no complete episode (no step has terminals or timeouts set)")
    norm = Normalization.from_data(obs, act)  # over every transition in the file

    lengths = np.diff(np.concatenate([[-1], ends])).astype(np.int64)  # (E,)
    used = int(ends[-1]) + 1
    starts = used - np.cumsum(lengths[::-1])[::-1]  # (E,) first step of each episode
    returns = np.add.reduceat(rewards[:used].astype(np.float64), starts)  # (E,)
    keep = returns > 0 if drop_zero_reward_episodes else np.ones(lengths.size, bool)
    if not keep.any():
        raise DatasetError(f"{path}: all {lengths.size} complete episodes have a return <= 0, nothing to keep")
    steps = np.repeat(keep, lengths)  # (used,) step belongs to a kept episode

    obs_range = norm.obs_max - norm.obs_min + EPS
    act_range = norm.action_max - norm.action_min + EPS
    out = Path(out_dir)
    train_path, norm_path = out / "train.npz", out / "normalization.npz"
    _save_npz(
        train_path,
        {
            "states": (2 * (obs[:used][steps] - norm.obs_min) / obs_range - 1).astype(np.float32),
            "actions": (2 * (act[:used][steps] - norm.action_min) / act_range - 1).astype(np.float32),
            "rewards": rewards[:used][steps].astype(np.float32),
            "terminals": data["terminals"][:used][steps].astype(bool),
            "traj_lengths": lengths[keep],
        },
    )
    try:
        norm.save(norm_path)
    except OSError as exc:
        raise DatasetError(f"cannot write {norm_path}: {exc}") from None

    kept = returns[keep]
    return ConversionSummary(
        num_episodes=int(keep.sum()),
        num_transitions=int(lengths[keep].sum()),
        return_mean=float(kept.mean()),
        return_std=float(kept.std()),
        return_min=float(kept.min()),
        return_max=float(kept.max()),
        obs_dim=int(obs.shape[1]),
        action_dim=int(act.shape[1]),
        skipped_zero_reward_episodes=int((~keep).sum()),
        dropped_trailing_steps=len(obs) - used,
        paths=(str(train_path), str(norm_path)),
    )


def _d4rl_installed() -> bool:
    return importlib.util.find_spec("d4rl") is not None


def locate_d4rl_dataset(name: str) -> str:
    """The local hdf5 file the d4rl package keeps for `name` (e.g. hopper-medium-v2); downloads nothing."""
    if not _d4rl_installed():
        raise DatasetError(
            f"cannot find D4RL dataset '{name}': the d4rl package is not installed; "
            "pass the hdf5 file with --d4rl instead"
        )
    root = Path(os.environ.get("D4RL_DATASET_DIR", os.path.expanduser("~/.d4rl/datasets")))
    stem = name.replace("-", "_", 1)  # d4rl's file names: hopper-medium-v2 -> hopper_medium-v2.hdf5
    exact = root / f"{stem}.hdf5"
    if exact.is_file():
        return str(exact)
    found = sorted(p for p in root.glob(f"{stem}*.hdf5") if p.is_file()) if root.is_dir() else []
    if len(found) == 1:
        return str(found[0])
    if len(found) > 1:
        listed = ", ".join(p.name for p in found)
        raise DatasetError(f"D4RL dataset '{name}' is ambiguous under {root}: {listed}; pass the file with --d4rl")
    raise DatasetError(
        f"D4RL dataset '{name}' not found under {root} (looked for {stem}*.hdf5); "
        "download it with d4rl first or pass the hdf5 file with --d4rl"
    )
