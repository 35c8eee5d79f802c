"""Advantage-weighted regression's data, in numpy for both frameworks (upstream TrainAWRDiffusionAgent):
the FIFO replay buffer, TD(lambda) value targets, minibatch rows and advantage weights.

The buffer holds whole policy steps of every env (obs (S, N, To, Do), executed actions (S, N, Ta, Da),
rewards times scale_reward_factor and terminated flags (S, N)), appended in training iterations only
and keeping the last `buffer_size` steps. Its state goes into checkpoints, so a resumed run trains on
the same buffer as an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from shared.algorithms.offpolicy import minibatch_rows  # noqa: F401  (AWR's minibatch rows: the shared draw)

TD_GAMMA = 0.99  # upstream calls its td_values without train.gamma: the function's default
TD_ALPHA, TD_LAMBDA = 0.95, 0.95  # upstream's td_values defaults
ADV_STD_EPS = 1e-6  # upstream's denominator floor when normalising a minibatch's advantages
_FIELDS = ("obs", "actions", "rewards", "terminated")


class ReplayBuffer:
    """The last `capacity` policy steps of all envs, oldest first (upstream's deques of maxlen buffer_size)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.data: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return 0 if self.data is None else len(self.data["rewards"])

    def extend(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray) -> None:
        """Append T steps: obs (T, N, To, Do), actions (T, N, Ta, Da), rewards and terminated (T, N)."""
        new = {"obs": np.asarray(obs, np.float32), "actions": np.asarray(actions, np.float32),
               "rewards": np.asarray(rewards, np.float64), "terminated": np.asarray(terminated, bool)}
        if self.data is not None:
            new = {k: np.concatenate([self.data[k], v]) for k, v in new.items()}
        self.data = {k: v[-self.capacity:] for k, v in new.items()}

    def state(self) -> OrderedDict:
        if self.data is None:
            return OrderedDict(capacity=np.array(self.capacity, np.int64))
        return OrderedDict(capacity=np.array(self.capacity, np.int64), **{k: self.data[k] for k in _FIELDS})

    def load_state(self, state: dict) -> None:
        self.data = None if "rewards" not in state else {k: np.asarray(state[k]) for k in _FIELDS}
        if self.data is not None:
            self.data = {k: v[-self.capacity:] for k, v in self.data.items()}


def td_lambda_targets(rewards: np.ndarray, terminated: np.ndarray, values: np.ndarray, gamma: float = TD_GAMMA,
                      alpha: float = TD_ALPHA, lam: float = TD_LAMBDA) -> np.ndarray:
    """TD(lambda) value targets (S, N) over the buffer in time order, as upstream's td_values: the last
    step bootstraps from its own value (0 where terminated); episodes are cut at terminations only,
    so truncations and iteration boundaries chain on. The dtypes follow upstream's (values float32,
    rewards float64, the last step's bootstrap in float32); the result is float32."""
    values = np.asarray(values, np.float32)
    alive = ~np.asarray(terminated, bool)
    out = np.zeros_like(values)
    val: np.ndarray | float = 0.0
    for i in range(len(values) - 1, -1, -1):
        # float32 at the last step (its own value), float64 after multiplying by the int mask elsewhere
        bootstrap = np.where(alive[-1], values[-1], np.float32(0)) if i == len(values) - 1 \
            else values[i + 1] * alive[i].astype(np.int64)
        error = rewards[i] + gamma * bootstrap - values[i]
        val = alpha * error + gamma * lam * alive[i].astype(np.int64) * val
        out[i] = val + values[i]
    return out


def advantage_weights(advantages: np.ndarray, beta: float, max_weight: float) -> np.ndarray:
    """One minibatch's weights, in float32 as upstream: a = (A - mean) / (std + 1e-6) with the unbiased
    std, w = min(exp(beta * a), max_adv_weight)."""
    adv = np.asarray(advantages, np.float32)
    std = adv.std(ddof=1, dtype=np.float32) if len(adv) > 1 else np.float32(np.nan)
    norm = (adv - adv.mean(dtype=np.float32)) / (std + np.float32(ADV_STD_EPS))
    with np.errstate(over="ignore"):
        weights = np.exp(np.float32(beta) * norm)
    return np.minimum(weights, np.float32(max_weight)).astype(np.float32)
