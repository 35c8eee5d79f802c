"""Reward-weighted regression's data, in numpy for both frameworks: which policy steps of a rollout
are trained on, their discounted returns and their weights (upstream TrainRWRDiffusionAgent).

Only episodes that start and end inside the iteration count (the steps before an iteration's
first episode start, carried over from the last iteration, and after its last one are dropped, as
are single-step episodes). Each kept policy step's return is the discounted sum of the episode's
chunk rewards from that step on (gamma per policy step); returns are normalised over all kept
steps, (R - mean) / (std + 1e-3), and weighted w = min(exp(beta * R_norm), max_reward_weight) in
float32, as upstream computes them on its tensors.
"""

from __future__ import annotations

import numpy as np

RETURN_STD_EPS = 1e-3  # upstream's denominator floor when normalising returns


def finished_episodes(first: np.ndarray) -> list[tuple[int, int, int]]:
    """(env, start, stop) of every episode between consecutive start markers of `first` (T+1, N),
    env by env then in time order; steps start..stop-1, and only episodes longer than one step."""
    out = []
    for e in range(first.shape[1]):
        starts = np.flatnonzero(first[:, e] == 1)
        out += [(e, int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]) if b - a > 1]
    return out


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Return-to-go of every step of one episode: R_t = r_t + gamma R_{t+1}, R after the end = 0."""
    out = np.zeros(len(rewards))
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        out[t] = acc
    return out


def reward_weights(returns: np.ndarray, beta: float, max_weight: float) -> np.ndarray:
    """float32 weights min(exp(beta * (R - mean) / (std + 1e-3)), max_weight) over all kept steps."""
    returns = np.asarray(returns, np.float64)
    normalised = ((returns - returns.mean()) / (returns.std() + RETURN_STD_EPS)).astype(np.float32)
    with np.errstate(over="ignore"):
        weights = np.exp(np.float32(beta) * normalised)
    return np.minimum(weights, np.float32(max_weight)).astype(np.float32)


def rwr_batch(obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, first: np.ndarray, gamma: float,
              beta: float, max_weight: float) -> dict[str, np.ndarray] | None:
    """The training rows of one rollout: obs (T, N, To, Do), actions (T, N, Ta, Da), rewards (T, N),
    first (T+1, N) -> {'obs', 'actions', 'weights', 'returns'} (float32, one row per kept policy step),
    or None when no episode finished inside the rollout."""
    episodes = finished_episodes(first)
    if not episodes:
        return None
    rows_obs = np.concatenate([obs[a:b, e] for e, a, b in episodes])
    rows_act = np.concatenate([actions[a:b, e] for e, a, b in episodes])
    returns = np.concatenate([discounted_returns(rewards[a:b, e], gamma) for e, a, b in episodes])
    return {"obs": rows_obs.astype(np.float32), "actions": rows_act.astype(np.float32),
            "weights": reward_weights(returns, beta, max_weight), "returns": returns.astype(np.float32)}
