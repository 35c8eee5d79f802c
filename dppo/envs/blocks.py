"""A gymnasium VectorEnv whose envs live in worker processes, each holding a contiguous block of them: the
batching both kinds of workers share (Ray actors: dppo/envs/ray_vector.py; local processes:
dppo/envs/process_vector.py), and the split of the workers into two groups that the fine-tuning loop steps one
beside the other (env.overlap: one group steps while the policy samples for the other).

A block steps its envs in order and resets an ended episode within the step; the batch is put together here
exactly as gymnasium's SyncVectorEnv does it with SAME_STEP autoreset (the ended episode's last observation and
info in info["final_obs"] / info["final_info"]), so the same seeds give the same observations, rewards and flags
as the local vector env. Workers report the seconds their envs spent stepping, so that the envs' time is known
when it runs beside the learner's.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from shared.data.envs import EnvSpec, make_env

# One env's step as a block returns it: (obs, reward, terminated, truncated, info, final), where final = (last obs,
# last info) of an episode that ended in this step (the env was then reset).
EnvStep = tuple[Any, float, bool, bool, dict, tuple | None]


class EnvBlock:
    """A block of envs in one worker (a Ray actor's class, a worker process's object; also usable in-process)."""

    def __init__(self, spec: EnvSpec, n: int) -> None:
        self.envs = [make_env(spec) for _ in range(n)]

    def reset(self, seeds: list[int | None], options: dict | None) -> list[tuple[np.ndarray, dict]]:
        return [env.reset(seed=s, options=options) for env, s in zip(self.envs, seeds, strict=True)]

    def step(self, actions: np.ndarray) -> tuple[list[EnvStep], float]:
        """actions (k, act_steps, Da) -> (each env's EnvStep, the seconds the envs took)."""
        tic = time.perf_counter()
        out = []
        for env, action in zip(self.envs, actions, strict=True):
            obs, reward, terminated, truncated, info = env.step(action)
            final = None
            if terminated or truncated:
                final = (obs, info)
                obs, info = env.reset()
            out.append((obs, reward, terminated, truncated, info, final))
        return out, time.perf_counter() - tic

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        """One env's (observation space, action space)."""
        return self.envs[0].observation_space, self.envs[0].action_space

    def get_attr(self, name: str) -> list[Any]:
        return [env.get_wrapper_attr(name) for env in self.envs]

    def set_attr(self, name: str, values: list[Any]) -> None:
        for env, value in zip(self.envs, values, strict=True):
            env.set_wrapper_attr(name, value)

    def close(self) -> None:
        for env in self.envs:
            env.close()


class BlockVectorEnv(gym.vector.VectorEnv):
    """n_envs envs in `n_workers` workers (blocks as even as possible, in env order). A subclass starts its
    workers and implements _send (call a method of one worker's EnvBlock, without waiting) and _gather (the
    answers of calls sent, in order), then calls _ready."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def _split(self, n_envs: int, n_workers: int) -> None:
        self.num_envs = n_envs
        self.sizes = [len(b) for b in np.array_split(np.arange(n_envs), n_workers)]
        self.starts = np.cumsum([0, *self.sizes])
        half = (n_workers + 1) // 2  # env.overlap's two groups of workers; one group when there is one worker
        self.worker_groups = [list(range(half)), list(range(half, n_workers))] if n_workers > 1 else [[0]]
        self.step_seconds = 0.0  # the workers' stepping time, summed over calls (a group's slowest worker)
        self._pending: dict[int, list[Any]] = {}

    def _send(self, worker: int, method: str, *args: Any) -> Any:
        raise NotImplementedError

    def _gather(self, handles: list[Any]) -> list[Any]:
        raise NotImplementedError

    def _ready(self, spaces: tuple[gym.Space, gym.Space]) -> None:
        self.single_observation_space, self.single_action_space = spaces
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._obs = create_empty_array(self.single_observation_space, self.num_envs)

    def _call_all(self, method: str, per_worker: list[tuple] | None = None) -> list[Any]:
        args = per_worker or [()] * len(self.sizes)
        return self._gather([self._send(w, method, *a) for w, a in enumerate(args)])

    def _blocks(self, values: Any) -> list[Any]:
        return [values[a:b] for a, b in zip(self.starts[:-1], self.starts[1:])]

    @property
    def overlap_groups(self) -> list[slice]:
        """The env rows of each worker group, in order: what env.overlap steps one beside the other."""
        return [slice(int(self.starts[g[0]]), int(self.starts[g[-1] + 1])) for g in self.worker_groups]

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """As SyncVectorEnv.reset: an int seed s seeds env i with s + i, a list one seed per env."""
        if seed is None:
            seed = [None] * self.num_envs
        elif isinstance(seed, int):
            seed = [seed + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"{len(seed)} seeds for {self.num_envs} envs")
        results = self._call_all("reset", [(s, options) for s in self._blocks(seed)])
        infos: dict[str, Any] = {}
        flat = [r for block in results for r in block]
        for i, (_, info) in enumerate(flat):
            infos = self._add_info(infos, info, i)
        self._obs = concatenate(self.single_observation_space, [obs for obs, _ in flat], self._obs)
        return copy.deepcopy(self._obs), infos

    def step_send(self, group: int, actions: np.ndarray) -> None:
        """Start worker group `group` stepping its envs: actions (rows of the group, act_steps, Da)."""
        workers = self.worker_groups[group]
        first = self.starts[workers[0]]
        self._pending[group] = [self._send(w, "step", actions[self.starts[w] - first:self.starts[w + 1] - first])
                                for w in workers]

    def step_recv(self, group: int) -> list[EnvStep]:
        """Wait for group `group`'s step: each of its envs' EnvStep, in env order."""
        answers = self._gather(self._pending.pop(group))
        self.step_seconds += max(seconds for _, seconds in answers)
        return [r for block, _ in answers for r in block]

    def group_obs(self, group: int, flat: list[EnvStep]) -> Any:
        """The batched observations of one group's step (step_recv's answer)."""
        rows = self.overlap_groups[group]
        out = create_empty_array(self.single_observation_space, rows.stop - rows.start)
        return concatenate(self.single_observation_space, [r[0] for r in flat], out)

    def assemble(self, flat: list[EnvStep]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """All envs' EnvSteps of one step (in env order) -> (obs, rewards, terminated, truncated, infos), batched
        as SyncVectorEnv (SAME_STEP) batches them."""
        rewards = np.array([r[1] for r in flat], np.float64)
        terminated = np.array([r[2] for r in flat], np.bool_)
        truncated = np.array([r[3] for r in flat], np.bool_)
        infos: dict[str, Any] = {}
        for i, (_, _, _, _, info, final) in enumerate(flat):
            if final is not None:
                infos = self._add_info(infos, {"final_obs": final[0], "final_info": final[1]}, i)
            infos = self._add_info(infos, info, i)
        self._obs = concatenate(self.single_observation_space, [r[0] for r in flat], self._obs)
        return copy.deepcopy(self._obs), rewards, terminated, truncated, infos

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """actions (N, act_steps, Da) -> (obs, rewards, terminated, truncated, infos): every group at once."""
        actions = np.asarray(actions)
        for g, rows in enumerate(self.overlap_groups):
            self.step_send(g, actions[rows])
        return self.assemble([r for g in range(len(self.worker_groups)) for r in self.step_recv(g)])

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(v for block in self._call_all("get_attr", [(name,)] * len(self.sizes)) for v in block)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"{len(values)} values for {self.num_envs} envs")
        self._call_all("set_attr", [(name, list(v)) for v in self._blocks(list(values))])
