"""Environment workers as Ray actors: a gymnasium VectorEnv whose envs live in Ray actor processes, on this
machine (a local Ray instance started here) or across a Ray cluster (an existing one's address).

Each actor holds a contiguous block of the envs (dppo/envs/blocks.py: EnvBlock, and the batching shared with the
local worker processes, the same numbers as the local vector env for the same seeds). Actors step in parallel:
one call per actor per step, the learner waits for all of them (or, with env.overlap, for one group of them at a
time). The learner stays in this process. sim_state (get_attr/set_attr) goes through the actors, for
checkpoints and exact resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

from dppo.envs.blocks import BlockVectorEnv, EnvBlock
from shared.data.envs import EnvSpec
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


class RayVectorEnv(BlockVectorEnv):
    """spec.n_envs envs in cfg.num_workers Ray actors (blocks as even as possible, in env order)."""

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
        self._split(spec.n_envs, cfg.num_workers)
        actor = ray.remote(num_cpus=1)(EnvBlock)
        self.workers = [actor.remote(spec, k) for k in self.sizes]
        self._closed_workers = False
        try:  # the first answer: every actor has built its envs
            spaces = self._call_all("spaces")
        except ConnectionError as exc:
            self.close(terminate=True)
            raise ConfigError(str(exc)) from None
        self._ready(spaces[0])

    def _send(self, worker: int, method: str, *args: Any) -> Any:
        return getattr(self.workers[worker], method).remote(*args)

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
