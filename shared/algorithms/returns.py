"""Advantage estimation and reward scaling on (T, N) rollout arrays: T steps, N envs."""

from __future__ import annotations

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_value: np.ndarray,
    terminated: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation, as upstream DPPO.

    rewards, values, terminated: (T, N); next_value: (N,) value of the state after
    the last step. Only termination stops bootstrapping; a truncated episode is
    followed by the next episode's value, as upstream does.
    Returns (advantages, returns), each (T, N).
    """
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float64)
    last = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in reversed(range(steps)):
        nxt = next_value if t == steps - 1 else values[t + 1]
        nonterminal = 1.0 - terminated[t]
        delta = rewards[t] + gamma * nxt * nonterminal - values[t]
        last = delta + gamma * gae_lambda * nonterminal * last
        advantages[t] = last
    return advantages, advantages + values


class RunningMeanStd:
    """Running mean / variance with Chan's parallel update (count starts at epsilon)."""

    def __init__(self, epsilon: float = 1e-4, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = epsilon

    def update(self, x: np.ndarray) -> None:
        b_mean, b_var, b_count = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean = self.mean + delta * b_count / total
        self.var = m2 / (total - 1)
        self.count = total

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": np.asarray(self.mean), "var": np.asarray(self.var), "count": np.asarray(self.count)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], float(state["count"])


class RunningRewardScaler:
    """Divide rewards by the running std of discounted returns, then clip.

    rewards and `first` (1 where a step starts a new episode) are (N, T).
    """

    def __init__(self, num_envs: int, cliprew: float = 10.0, gamma: float = 0.99, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd()
        self.ret = np.zeros(num_envs)
        self.cliprew, self.gamma, self.epsilon = cliprew, gamma, epsilon

    def __call__(self, reward: np.ndarray, first: np.ndarray) -> np.ndarray:
        rets = np.zeros_like(reward, dtype=np.float64)
        prev = self.ret
        for t in range(reward.shape[1]):
            prev = rets[:, t] = reward[:, t] + (1.0 - first[:, t]) * self.gamma * prev
        self.ret = rets[:, -1]
        self.rms.update(rets.reshape(-1))
        return self.transform(reward)

    def transform(self, reward: np.ndarray) -> np.ndarray:
        return np.clip(reward / np.sqrt(self.rms.var + self.epsilon), -self.cliprew, self.cliprew)

    def state(self) -> dict[str, np.ndarray]:
        return {"ret": self.ret.copy(), **{f"rms_{k}": v for k, v in self.rms.state().items()}}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.ret = np.asarray(state["ret"], dtype=np.float64).copy()
        self.rms.load_state({k[4:]: v for k, v in state.items() if k.startswith("rms_")})
