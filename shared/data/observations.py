"""Observations as the loops carry them: a state array, or a camera env's dict {"state": float, "rgb": uint8}.

A state observation is one array whose first axes are the batch ((N, To, Do) for N envs, (T, N, To, Do) for a
rollout). A camera env's (shared/data/robomimic.py through shared/data/envs.py MultiStepLowdim) is a dict of two
such arrays with the same leading axes: "state" (..., To, Ds) float32, normalized, and "rgb" (..., To, C, H, W)
uint8 in [0, 255], which stays uint8 everywhere outside the networks (they scale it, as upstream's ViT does).

This module is the one place that knows the two forms: the rollout, scoring, buffers, checkpoints and the agents
go through these functions, so the state-only path is the array path it always was (the same operations on the
same array). The networks take the leaves as positional inputs in the order of `network_inputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Obs = np.ndarray | dict[str, np.ndarray]
IMAGE_KEYS = ("state", "rgb")  # a camera observation's keys, in the order the image networks take them
FLOAT_KEYS = ("state",)  # the leaves a dtype change applies to (frames stay uint8)


def is_image(obs: Any) -> bool:
    """Whether obs is a camera observation (a dict of state and frames)."""
    return isinstance(obs, dict)


def map_obs(fn: Callable[[np.ndarray], np.ndarray], obs: Obs) -> Obs:
    """fn applied to every leaf (the array itself for a state observation)."""
    return {k: fn(obs[k]) for k in IMAGE_KEYS} if is_image(obs) else fn(obs)


def map_float(fn: Callable[[np.ndarray], np.ndarray], obs: Obs) -> Obs:
    """fn applied to the float leaves only: the state array, or a camera observation's "state" (rgb unchanged)."""
    return {k: fn(v) if k in FLOAT_KEYS else v for k, v in obs.items()} if is_image(obs) else fn(obs)


def as_float(obs: Obs, dtype: Any) -> Obs:
    """The float leaves in `dtype` (no copy when they are already), frames untouched."""
    return map_float(lambda a: np.asarray(a).astype(dtype, copy=False), obs)


def batch_len(obs: Obs) -> int:
    """Length of the first axis."""
    return len(obs["state"]) if is_image(obs) else len(obs)


def state_of(obs: Obs) -> np.ndarray:
    """The proprioceptive / state part: the array itself, or a camera observation's "state"."""
    return obs["state"] if is_image(obs) else obs


def take(obs: Obs, rows: Any) -> Obs:
    """obs[rows] on every leaf (an index, a slice, an index array)."""
    return map_obs(lambda a: a[rows], obs)


def flatten_steps(obs: Obs, leading: int = 2) -> Obs:
    """The first `leading` axes merged into one: (T, N, ...) -> (T N, ...) on every leaf."""
    return map_obs(lambda a: a.reshape(-1, *a.shape[leading:]), obs)


def stack(items: Sequence[Obs]) -> Obs:
    """np.stack over a new first axis, leaf by leaf."""
    if is_image(items[0]):
        return {k: np.stack([o[k] for o in items]) for k in IMAGE_KEYS}
    return np.stack(items)


def concat(items: Sequence[Obs]) -> Obs:
    """np.concatenate along the first axis, leaf by leaf."""
    if is_image(items[0]):
        return {k: np.concatenate([o[k] for o in items]) for k in IMAGE_KEYS}
    return np.concatenate(items)


def copy_with_rows(obs: Obs, rows: Sequence[int], values: Sequence[Any]) -> Obs:
    """A copy of obs with row rows[i] replaced by values[i] (each one row: an array, or a dict of arrays)."""
    out = map_obs(lambda a: np.array(a, copy=True), obs)
    for i, v in zip(rows, values):
        if is_image(out):
            for k in IMAGE_KEYS:
                out[k][i] = v[k]
        else:
            out[i] = v
    return out


def empty_steps(obs: Obs) -> Obs:
    """Zero steps of observations shaped like obs: (0, *leaf shape), each leaf's dtype kept."""
    return map_obs(lambda a: np.zeros((0, *np.shape(a)), np.asarray(a).dtype), obs)


def network_inputs(obs: Obs) -> tuple[np.ndarray, ...]:
    """The positional observation inputs a network takes: (state,) or (state, rgb)."""
    return tuple(obs[k] for k in IMAGE_KEYS) if is_image(obs) else (obs,)


def to_group(obs: Obs, name: str) -> dict[str, np.ndarray]:
    """Checkpoint entries of an observation: {name: array}, or {"name.state": ..., "name.rgb": ...}."""
    return {f"{name}.{k}": obs[k] for k in IMAGE_KEYS} if is_image(obs) else {name: obs}


def from_group(group: dict[str, Any], name: str) -> Obs:
    """Inverse of to_group: the observation stored under `name` in a checkpoint group (floats as float32)."""
    if name in group:
        return np.asarray(group[name])
    return {"state": np.asarray(group[f"{name}.state"], np.float32), "rgb": np.asarray(group[f"{name}.rgb"], np.uint8)}
