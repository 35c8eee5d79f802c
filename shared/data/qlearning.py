"""Demonstrations as Q-learning transitions (upstream StitchedSequenceQLearningDataset), for the fine-tuners
that replay them (RLPD, IBRL, Cal-QL).

A transition starts at every step from which a whole action chunk (Ta steps) fits in its episode, except the
last step of a truncated episode (one that ends without `terminals`), whose next state is unknown: obs is the
To-step history ending at the start (repeating the episode's first state before it), next_obs the history
ending Ta steps later (for a terminal step that reaches into the next episode, which the terminal flag masks),
actions the chunk, reward and terminal flag those of the start step, and, on request, the discounted return
from the start to the episode's end. The last Ta transitions of the whole file get zero next states
(upstream's guard against indexing past the end; they are terminal).
"""

from __future__ import annotations

import os

import numpy as np

from shared.algorithms.gaussian_replay import returns_to_go
from shared.data.dataset import _read_npz
from shared.errors import DatasetError


def q_learning_transitions(path: str | os.PathLike, horizon_steps: int, cond_steps: int, max_n_episodes: int,
                           discount: float | None = None) -> dict[str, np.ndarray]:
    """{'obs', 'next_obs' (N, To, Do) float32, 'actions' (N, Ta, Da) float32, 'rewards' (N,) float64,
    'terminated' (N,) bool} and, when `discount` is given, 'returns' (N,) float32."""
    d = _read_npz(path, ("states", "actions", "rewards", "terminals", "traj_lengths"), "offline dataset")
    lengths = np.asarray(d["traj_lengths"][:max_n_episodes], np.int64)
    total = int(lengths.sum())
    states, actions = np.asarray(d["states"], np.float32), np.asarray(d["actions"], np.float32)
    rewards, dones = np.asarray(d["rewards"][:total], np.float64), np.asarray(d["terminals"][:total], bool)
    if min(len(states), len(actions), len(rewards), len(dones)) < total:
        raise DatasetError(f"offline dataset {path}: traj_lengths sum to {total} steps, but the arrays hold "
                           f"{min(len(states), len(actions), len(rewards), len(dones))}")
    starts, before = [], []  # transition start (global step) and how many steps of its episode precede it
    first = 0
    for length in lengths:
        last_start = first + length - horizon_steps - (0 if dones[first + length - 1] else 1)
        starts += range(first, last_start + 1)
        before += range(0, last_start + 1 - first)
        first += length
    start, before = np.asarray(starts, np.int64), np.asarray(before, np.int64)
    lags = np.arange(cond_steps - 1, -1, -1)  # To-1 .. 0: oldest first
    hist = np.maximum(start[:, None] - lags[None, :], (start - before)[:, None])  # (N, To) clamped to episode start
    next_hist = np.maximum(start[:, None] + horizon_steps - lags[None, :],
                           (start - before + horizon_steps)[:, None])
    n = len(start)
    valid_next = np.arange(n) < n - horizon_steps
    next_obs = np.zeros((n, cond_steps, states.shape[1]), np.float32)
    next_obs[valid_next] = states[next_hist[valid_next]]
    out = {"obs": states[hist], "next_obs": next_obs,
           "actions": actions[start[:, None] + np.arange(horizon_steps)[None, :]],
           "rewards": rewards[start], "terminated": dones[start]}
    if discount is not None:
        out["returns"] = returns_to_go(rewards, lengths, discount)[start]
    return out
