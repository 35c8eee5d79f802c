"""Environment workers as Ray actors: a gymnasium VectorEnv whose envs live in Ray actor processes, on this
machine (a local Ray instance started here) or across a Ray cluster (an existing one's address).

Each actor holds a contiguous block of the envs (`make_env` of the same EnvSpec) and steps them in order; the
batch is put together here exactly as gymnasium's SyncVectorEnv does it with SAME_STEP autoreset (an ended
episode is reset within the step, its last observation and info in info["final_obs"] / info["final_info"]),
so the same seeds give the same observations, rewards and flags as the local vector env. Actors step in
parallel: one call per actor per step, the learner waits for all of them. The learner stays in this process.
sim_state (get_attr/set_attr) goes through the actors, for checkpoints and exact resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from shared.data.envs import EnvSpec, make_env
from shared.errors import ConfigError
from shared.settings.run import RayConfig

RAY_MISSING = "env.ray needs the ray package: pip install 'ray>=2.9' (or pip install -e '.[ray]')"


def import_ray() -> Any:
    """The ray module, or one ConfigError line naming what to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


class EnvBlock:
    """A block of envs in one Ray actor (the actor's class; also usable in-process)."""

    def __init__(self, spec: EnvSpec, n: int) -> None:
        self.envs = [make_env(spec) for _ in range(n)]

    def reset(self, seeds: list[int | None], options: dict | None) -> list[tuple[np.ndarray, dict]]:
        return [env.reset(seed=s, options=options) for env, s in zip(self.envs, seeds, strict=True)]

    def step(self, actions: np.ndarray) -> list[tuple[np.ndarray, float, bool, bool, dict, tuple | None]]:
        """actions (k, act_steps, Da) -> per env (obs, reward, terminated, truncated, info, final), where
        final = (last obs, last info) of an episode that ended in this step (the env was then reset)."""
        out = []
        for env, action in zip(self.envs, actions, strict=True):
            obs, reward, terminated, truncated, info = env.step(action)
            final = None
            if terminated or truncated:
                final = (obs, info)
                obs, info = env.reset()
            out.append((obs, reward, terminated, truncated, info, final))
        return out

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


def ray_init_kwargs(cfg: RayConfig) -> dict[str, Any]:
    """ray.init's arguments: an existing cluster's address as given; else a local instance with a small,
    fixed footprint (one logical CPU per worker, no dashboard, quiet logs: Ray's errors only)."""
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
    if cfg.address is not None:
        return {"address": cfg.address, **quiet}
    return {"num_cpus": cfg.num_workers, "num_gpus": 0, "include_dashboard": False, "object_store_memory": 80 << 20,
            "runtime_env": local_runtime_env(), **quiet}


def local_runtime_env() -> dict[str, Any]:
    """Workers on this machine import what this process imports: this checkout (it may not be the installed
    one) and the working directory (an env given as 'module:Id' is imported from there)."""
    here = [str(Path(__file__).resolve().parents[2]), os.getcwd()]
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(here + inherited))}}


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """One ConfigError line when a 'HOST:PORT' or 'ray://HOST:PORT' address takes no TCP connection (ray.init
    would retry it for minutes); None and 'auto' are left to Ray."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"env.ray.address={address!r}: expected null, 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"env.ray.address={address!r}: no Ray cluster answers there ({exc.strerror or exc}); "
                          "start one with `ray start --head` or fix the address") from None


class RayVectorEnv(gym.vector.VectorEnv):
    """spec.n_envs envs in cfg.num_workers Ray actors (blocks as even as possible, in env order)."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, spec: EnvSpec, cfg: RayConfig) -> None:
        if cfg.num_workers > spec.n_envs:
            raise ConfigError(f"env.ray.num_workers={cfg.num_workers} exceeds env.n_envs={spec.n_envs}; each Ray "
                              "worker holds at least one env")
        ray = import_ray()
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            check_reachable(cfg.address)
            try:
                ray.init(**ray_init_kwargs(cfg))
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"cannot start or reach Ray at env.ray.address={cfg.address!r} "
                                  f"({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
        self.num_envs = spec.n_envs
        self.sizes = [len(b) for b in np.array_split(np.arange(spec.n_envs), cfg.num_workers)]
        self.starts = np.cumsum([0, *self.sizes])
        actor = ray.remote(num_cpus=1)(EnvBlock)
        self.workers = [actor.remote(spec, k) for k in self.sizes]
        self._closed_workers = False
        try:  # the first answer: every actor has built its envs
            spaces = self._gather([w.spaces.remote() for w in self.workers])
        except ConnectionError as exc:
            self.close(terminate=True)
            raise ConfigError(str(exc)) from None
        self.single_observation_space, self.single_action_space = spaces[0]
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._obs = create_empty_array(self.single_observation_space, self.num_envs)

    def _gather(self, refs: list[Any]) -> list[Any]:
        """ray.get of one call per actor; a dead actor is a ConnectionError of one line (an actor whose envs
        could not be built: the exception its constructor raised), an env's own exception its cause."""
        ray = self._ray
        try:
            return ray.get(refs)
        except ray.exceptions.RayActorError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or ["ray actor died"]
            if getattr(exc, "actor_init_failed", False):  # the last line is "module.Error: message"
                raise ConnectionError(f"a Ray environment worker could not build its envs: {lines[-1]}") from None
            raise ConnectionError(f"a Ray environment worker died: {lines[0]}") from None
        except ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None

    def _blocks(self, values: Any) -> list[Any]:
        return [values[a:b] for a, b in zip(self.starts[:-1], self.starts[1:])]

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """As SyncVectorEnv.reset: an int seed s seeds env i with s + i, a list one seed per env."""
        if seed is None:
            seed = [None] * self.num_envs
        elif isinstance(seed, int):
            seed = [seed + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"{len(seed)} seeds for {self.num_envs} envs")
        results = self._gather([w.reset.remote(s, options) for w, s in zip(self.workers, self._blocks(seed))])
        infos: dict[str, Any] = {}
        flat = [r for block in results for r in block]
        for i, (_, info) in enumerate(flat):
            infos = self._add_info(infos, info, i)
        self._obs = concatenate(self.single_observation_space, [obs for obs, _ in flat], self._obs)
        return np.copy(self._obs), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """actions (N, act_steps, Da) -> (obs, rewards, terminated, truncated, infos), batched as SyncVectorEnv
        (SAME_STEP) batches them."""
        blocks = self._blocks(np.asarray(actions))  # (k, act_steps, Da) per actor
        results = self._gather([w.step.remote(block) for w, block in zip(self.workers, blocks)])
        flat = [r for block in results for r in block]
        rewards = np.array([r[1] for r in flat], np.float64)
        terminated = np.array([r[2] for r in flat], np.bool_)
        truncated = np.array([r[3] for r in flat], np.bool_)
        infos: dict[str, Any] = {}
        for i, (_, _, _, _, info, final) in enumerate(flat):
            if final is not None:
                infos = self._add_info(infos, {"final_obs": final[0], "final_info": final[1]}, i)
            infos = self._add_info(infos, info, i)
        self._obs = concatenate(self.single_observation_space, [r[0] for r in flat], self._obs)
        return np.copy(self._obs), rewards, terminated, truncated, infos

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(v for block in self._gather([w.get_attr.remote(name) for w in self.workers]) for v in block)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"{len(values)} values for {self.num_envs} envs")
        self._gather([w.set_attr.remote(name, list(v)) for w, v in zip(self.workers, self._blocks(list(values)))])

    def close_extras(self, terminate: bool = False, **kwargs: Any) -> None:
        """Close the envs (or kill the actors when terminate, e.g. after one died), then stop the local Ray
        instance if this env started it; a cluster given by address is left running."""
        if self._closed_workers:
            return
        self._closed_workers = True
        ray = self._ray
        if not terminate:
            with contextlib.suppress(ray.exceptions.RayError):  # an actor already gone is killed below all the same
                ray.get([w.close.remote() for w in self.workers])
        for w in self.workers:
            ray.kill(w)
        self.workers = []
        if self._owns_ray:
            ray.shutdown()
