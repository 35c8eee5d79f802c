"""Per-prompt reward normalization (DDPO's per-prompt stat tracking) and the reward-weighted-regression
weights, in numpy.

A tracker keeps, per prompt, the last `buffer_size` rewards it has seen. Normalizing a batch first adds
the batch's rewards to their prompts' buffers, then gives each reward (r - mean) / (std + 1e-6) with the
mean and (population) std of its prompt's buffer, or of the whole batch while that buffer holds fewer
than `min_count` rewards.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

STD_EPS = 1e-6


class PromptStats:
    def __init__(self, num_prompts: int, buffer_size: int, min_count: int) -> None:
        self.buffer_size, self.min_count = buffer_size, min_count
        self.buffers: list[list[float]] = [[] for _ in range(num_prompts)]

    def normalize(self, rewards: np.ndarray, prompts: np.ndarray) -> np.ndarray:
        """rewards (B,), prompts (B,) int -> normalized rewards (B,) float64; updates the buffers."""
        rewards = np.asarray(rewards, np.float64)
        for r, c in zip(rewards, prompts):
            buf = self.buffers[int(c)]
            buf.append(float(r))
            del buf[: max(0, len(buf) - self.buffer_size)]
        out = np.empty_like(rewards)
        for c in np.unique(prompts):
            rows = prompts == c
            buf = np.asarray(self.buffers[int(c)])
            ref = buf if len(buf) >= self.min_count else rewards
            out[rows] = (rewards[rows] - ref.mean()) / (ref.std() + STD_EPS)
        return out

    def state(self) -> OrderedDict:
        """The buffers as arrays: counts (P,) int64, values (P, buffer_size) float64 (zero-padded)."""
        counts = np.array([len(b) for b in self.buffers], np.int64)
        values = np.zeros((len(self.buffers), self.buffer_size), np.float64)
        for i, b in enumerate(self.buffers):
            values[i, : len(b)] = b
        return OrderedDict(counts=counts, values=values)

    def load_state(self, state: dict) -> None:
        counts, values = np.asarray(state["counts"]), np.asarray(state["values"])
        self.buffers = [list(map(float, values[i, : counts[i]])) for i in range(len(counts))]


def rwr_weights(normalized: np.ndarray, prompts: np.ndarray, beta: float) -> np.ndarray:
    """exp(beta r) / Z_c with Z_c the sum of exp(beta r) over the samples of the same prompt.  (B,)"""
    z = beta * np.asarray(normalized, np.float64)
    out = np.empty_like(z)
    for c in np.unique(prompts):
        rows = prompts == c
        e = np.exp(z[rows] - z[rows].max())
        out[rows] = e / e.sum()
    return out


def sparse_weights(normalized: np.ndarray, threshold: float) -> np.ndarray:
    """1 where the (normalized) reward is at least `threshold`, else 0.  (B,)"""
    return (np.asarray(normalized, np.float64) >= threshold).astype(np.float64)
