"""What the replay-buffer baselines (DIPO, DQL, IDQL, QSM) share, in numpy for both frameworks: the
transition buffer, the number of minibatches per iteration, and every random number their updates
draw (minibatch rows, training noise), keyed by (seed, iteration, stream, minibatch) so that a torch
run and a TF run train on the same minibatches, and a resumed run on the same as an uninterrupted one.

Upstream keeps five deques (obs, next_obs, actions, rewards times scale_reward_factor, terminated)
filled in training iterations only, and draws minibatch rows uniformly with replacement. DIPO and DQL
append transition by transition (capacity buffer_size transitions); IDQL and QSM append a whole policy
step of every env at a time (capacity buffer_size policy steps, that is buffer_size x n_envs
transitions). Either way the rows are in time order, env by env within a step; `TransitionBuffer`
takes the capacity in transitions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated")


class TransitionBuffer:
    """The last `capacity` transitions, oldest first: obs and next_obs (To, Do) float32, the executed
    actions (Ta, Da) float32, rewards (already scaled) float64, terminated bool, and any extra per-row
    field given to the first `extend` (Cal-QL's returns-to-go).

    Rows live in arrays that grow by doubling up to `capacity`, then in a ring over them: appending a
    step costs the step, not the buffer (upstream's deques), which matters when an iteration is one env step.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._arrays: dict[str, np.ndarray] | None = None
        self._start = 0  # physical index of the oldest row
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def fields(self) -> tuple[str, ...]:
        return () if self._arrays is None else tuple(self._arrays)

    def _physical(self, index: np.ndarray) -> np.ndarray:
        assert self._arrays is not None
        return (self._start + np.asarray(index)) % len(self._arrays["rewards"])

    @property
    def data(self) -> dict[str, np.ndarray] | None:
        """Every field's rows, oldest first (copies), or None while empty."""
        if self._arrays is None:
            return None
        return self.rows(np.arange(self._size))

    def extend(self, obs: np.ndarray, next_obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
               terminated: np.ndarray, **extra: np.ndarray) -> None:
        """Append T policy steps of N envs: obs, next_obs (T, N, To, Do), actions (T, N, Ta, Da), rewards and
        terminated (T, N), extra fields (T, N, ...); row order is step-major, env-minor (upstream's append order)."""
        T, N = np.shape(rewards)
        new = {"obs": np.array(obs, np.float32).reshape(T * N, *np.shape(obs)[2:]),
               "next_obs": np.array(next_obs, np.float32).reshape(T * N, *np.shape(next_obs)[2:]),
               "actions": np.array(actions, np.float32).reshape(T * N, *np.shape(actions)[2:]),
               "rewards": np.array(rewards, np.float64).reshape(T * N),
               "terminated": np.array(terminated).astype(bool).reshape(T * N),
               **{k: np.array(v).reshape(T * N, *np.shape(v)[2:]) for k, v in extra.items()}}
        self.append_rows(new)

    def append_rows(self, new: dict[str, np.ndarray]) -> None:
        """Append rows (one array per field, same length), dropping the oldest beyond capacity."""
        if self._arrays is not None and set(new) != set(self._arrays):
            raise ValueError(f"replay rows carry {sorted(new)}, the buffer holds {sorted(self._arrays)}")
        n = len(new["rewards"])
        if n == 0:
            return
        new = {k: v[-self.capacity:] for k, v in new.items()}
        n = len(new["rewards"])
        if self._arrays is None:
            alloc = min(self.capacity, max(n, 1024))
            self._arrays = {k: np.empty((alloc, *v.shape[1:]), v.dtype) for k, v in new.items()}
        alloc = len(self._arrays["rewards"])
        if self._size + n > alloc and alloc < self.capacity:  # grow (rows stay in order: no wrap before full)
            grown = min(self.capacity, max(2 * alloc, self._size + n))
            for k, a in self._arrays.items():
                b = np.empty((grown, *a.shape[1:]), a.dtype)
                b[: self._size] = a[: self._size]
                self._arrays[k] = b
            alloc = grown
        end = (self._start + self._size + np.arange(n)) % alloc
        for k, v in new.items():
            self._arrays[k][end] = v
        overflow = max(0, self._size + n - alloc)
        self._start = (self._start + overflow) % alloc
        self._size = min(alloc, self._size + n)

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The transitions at `index` (copies; 0 is the oldest), keyed by field."""
        if self._arrays is None:
            raise ValueError("the replay buffer is empty")
        p = self._physical(index)
        return {k: v[p] for k, v in self._arrays.items()}

    def set_actions(self, index: np.ndarray, actions: np.ndarray) -> None:
        """Overwrite the stored actions at `index` (DIPO keeps its improved actions)."""
        assert self._arrays is not None
        a = self._arrays["actions"]
        a[self._physical(index)] = np.asarray(actions, np.float32).reshape(len(index), *a.shape[1:])

    def state(self) -> OrderedDict:
        out = OrderedDict(capacity=np.array(self.capacity, np.int64))
        data = self.data
        if data is not None:
            out.update((k, data[k]) for k in (*FIELDS, *(f for f in data if f not in FIELDS)))
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self._arrays, self._start, self._size = None, 0, 0
        if "rewards" not in state:
            return
        names = [*FIELDS, *(k for k in state if k not in FIELDS and k != "capacity")]
        rows = {k: np.array(state[k]) for k in names}
        rows["terminated"] = rows["terminated"].astype(bool)
        self.append_rows(rows)


def transitions_of(rollout: dict[str, Any], act_steps: int, scale_reward_factor: float) -> dict[str, np.ndarray]:
    """A training rollout's transitions as the buffer stores them: observations, where each step led
    (rollout["next_obs_steps"]: an ended episode's final observation), the executed actions
    (the first act_steps of each sampled chunk), rewards times scale_reward_factor, terminated flags."""
    return {"obs": rollout["obs"], "next_obs": rollout["next_obs_steps"],
            "actions": rollout["samples"]["actions"][:, :, :act_steps],
            "rewards": rollout["rewards"] * scale_reward_factor, "terminated": rollout["terminated"]}


def minibatches_per_iteration(n_steps: int, n_envs: int, batch_size: int, replay_ratio: float) -> int:
    """Upstream's num_batch = int(n_steps * n_envs / batch_size * replay_ratio)."""
    return int(n_steps * n_envs / batch_size * replay_ratio)


def minibatch_rows(seed: int, itr: int, stream: int, k: int, n_rows: int, batch_size: int) -> np.ndarray:
    """batch_size row indices in [0, n_rows), drawn with replacement (upstream's np.random.choice) for
    minibatch k of iteration itr; `stream` tells apart the draws one minibatch makes (critic rows,
    actor rows, ...)."""
    return np.random.default_rng([seed, itr, stream, k, 8]).integers(0, n_rows, batch_size)


def minibatch_rows_distinct(seed: int, itr: int, stream: int, k: int, n_rows: int, batch_size: int) -> np.ndarray:
    """batch_size distinct row indices in [0, n_rows) (upstream SAC's np.random.choice(..., replace=False))."""
    return np.random.default_rng([seed, itr, stream, k, 12]).choice(n_rows, batch_size, replace=False)


def minibatch_noise(seed: int, itr: int, stream: int, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise of `shape` for minibatch k's `stream` (what upstream draws with
    torch.randn inside a loss or a sampler)."""
    return np.random.default_rng([seed, itr, stream, k, 9]).standard_normal(shape).astype(np.float32)


def minibatch_timesteps(seed: int, itr: int, stream: int, k: int, rows: int, denoising_steps: int) -> np.ndarray:
    """Denoising step indices (rows,) int64 uniform in [0, denoising_steps) (upstream's torch.randint)."""
    return np.random.default_rng([seed, itr, stream, k, 10]).integers(0, denoising_steps, rows).astype(np.int64)


def minibatch_uniform(seed: int, itr: int, stream: int, k: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Uniform [0, 1) float64 draws (upstream's np.random.uniform / torch.multinomial inputs)."""
    return np.random.default_rng([seed, itr, stream, k, 11]).random(shape)
