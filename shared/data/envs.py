"""Environments as DPPO sees them (framework-free): suites of single-step envs under one set of wrappers.

A suite makes one raw env of a task (gymnasium's API, unnormalized observations, actions in the env's
units, the time limit applied): `GymSuite` (gymnasium MuJoCo) here, `RobomimicSuite` (robosuite) in
shared/data/robomimic.py; `ENV_SUITES` maps upstream's wrapper names to them. Adding a suite is a class
with `make(name, max_episode_steps)` and one entry. Everything below is the same for every suite.

Per env: raw obs -> normalized to [-1, 1] with the dataset's normalization file;
policy actions in [-1, 1] -> environment units; act_steps actions executed per policy
step with rewards summed; an observation history of cond_steps (oldest first,
repeated after a reset); terminated kept apart from truncated. The vector env resets an
env whose episode ended within the same step (gymnasium's SAME_STEP autoreset, which is
upstream's `reset_within_step`): the returned observation already belongs to the next
episode and the last one's is in info["final_obs"].
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from shared.data.dataset import Normalization
from shared.data.robomimic import RobomimicImageSuite, RobomimicSuite
from shared.errors import ConfigError

# D4RL reference returns (random, expert) used for its normalized score.
D4RL_REFERENCE_RETURNS = {
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "halfcheetah": (-280.178953, 12135.0),
}
_GYM_IDS = {"hopper": "Hopper-v5", "walker2d": "Walker2d-v5", "halfcheetah": "HalfCheetah-v5"}


def gym_id(env_name: str) -> str:
    """'hopper-medium-v2' or 'Hopper-v5' -> the gymnasium id to make ('module:Id' is passed through)."""
    if env_name in gym.registry or ":" in env_name:
        return env_name
    family = env_name.split("-")[0].lower()
    if family not in _GYM_IDS:
        raise ConfigError(f"unknown environment {env_name!r}; use a gymnasium id or hopper/walker2d/halfcheetah-*")
    return _GYM_IDS[family]


def d4rl_normalized_score(env_name: str, episode_return: float | np.ndarray) -> float | np.ndarray | None:
    """100 * (return - random) / (expert - random), or None for other tasks."""
    family = env_name.split("-")[0].lower()
    if family not in D4RL_REFERENCE_RETURNS:
        return None
    lo, hi = D4RL_REFERENCE_RETURNS[family]
    return 100.0 * (np.asarray(episode_return) - lo) / (hi - lo)


class MultiStepLowdim(gym.Wrapper):
    """Normalization + action chunks + observation history (one env). A camera env's observation is a dict
    (shared/data/robomimic.py RobomimicImageEnv): its "state" is normalized, its "rgb" frames stay uint8
    (the network scales them), and each key gets its own history: {"state": (To, Ds), "rgb": (To, C, H, W)}."""

    def __init__(self, env: gym.Env, normalization: Normalization | None, cond_steps: int, act_steps: int) -> None:
        super().__init__(env)
        self.norm, self.cond_steps, self.act_steps = normalization, cond_steps, act_steps
        self.history: deque[Any] = deque(maxlen=cond_steps)
        act_dim = env.action_space.shape[0]
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            self.observation_space: gym.spaces.Space = gym.spaces.Dict({
                "state": gym.spaces.Box(-np.inf, np.inf, (cond_steps, *space["state"].shape), np.float32),
                "rgb": gym.spaces.Box(0, 255, (cond_steps, *space["rgb"].shape), np.uint8)})
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (cond_steps, space.shape[0]), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (act_steps, act_dim), np.float32)

    def _state(self, raw: np.ndarray) -> np.ndarray:
        return (raw if self.norm is None else self.norm.normalize_obs(raw)).astype(np.float32)

    def _obs(self, raw: Any) -> Any:
        if isinstance(raw, dict):
            return {"state": self._state(raw["state"]), "rgb": raw["rgb"]}
        return self._state(raw)

    def _stacked(self) -> Any:
        """(To, Do), most recent last; for a camera env {"state": (To, Ds), "rgb": (To, C, H, W)}."""
        if isinstance(self.history[0], dict):
            return {key: np.stack([h[key] for h in self.history]) for key in self.history[0]}
        return np.stack(self.history)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        raw, info = self.env.reset(seed=seed, options=options)
        obs = self._obs(raw)
        self.history.clear()
        self.history.extend([obs] * self.cond_steps)
        return self._stacked(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """action (act_steps, Da) in [-1, 1] -> (obs (To, Do), summed reward, terminated, truncated, info)."""
        total, terminated, truncated, info = 0.0, False, False, {}
        for a in np.asarray(action, np.float64).reshape(self.act_steps, -1):
            env_action = a if self.norm is None else self.norm.unnormalize_action(a)
            raw, reward, terminated, truncated, info = self.env.step(env_action)
            total += float(reward)
            self.history.append(self._obs(raw))
            if terminated or truncated:
                break
        return self._stacked(), total, terminated, truncated, info

    @property
    def sim_state(self) -> dict[str, np.ndarray] | None:
        """Everything the next steps and autoresets depend on, or None when the env cannot be snapshotted:
        the env's own state (a suite env's `snapshot()`, else a gymnasium MuJoCo env's full integration
        state and reset RNG), the TimeLimit step count and the observation history."""
        base = self.env.unwrapped
        if hasattr(base, "snapshot"):
            state = base.snapshot()
        elif hasattr(base, "model") and hasattr(base, "data"):
            state = _gym_mujoco_state(base)
        else:
            return None
        limit = _time_limit(self.env)
        stacked = self._stacked()
        history = ({f"history.{k}": v for k, v in stacked.items()} if isinstance(stacked, dict)
                   else {"history": stacked})
        return {**state, **history, "elapsed_steps": np.asarray(-1 if limit is None else limit._elapsed_steps)}

    @sim_state.setter
    def sim_state(self, state: dict[str, np.ndarray]) -> None:
        base = self.env.unwrapped
        own = {k: v for k, v in state.items() if k.partition(".")[0] not in ("history", "elapsed_steps")}
        if hasattr(base, "restore"):
            base.restore(own)
        else:
            _set_gym_mujoco_state(base, own)
        limit = _time_limit(self.env)
        if limit is not None:
            limit._elapsed_steps = int(state["elapsed_steps"])
        self.history.clear()
        if "history" in state:
            self.history.extend(np.asarray(state["history"], np.float32))
        else:  # a camera env: {"state": (To, Ds), "rgb": (To, C, H, W)}
            states, frames = np.asarray(state["history.state"], np.float32), np.asarray(state["history.rgb"], np.uint8)
            self.history.extend({"state": s, "rgb": f} for s, f in zip(states, frames))


def _gym_mujoco_state(base: Any) -> dict[str, np.ndarray]:
    """A gymnasium MuJoCo env's full integration state (qpos, qvel, act, warm start, time) and reset RNG."""
    import mujoco

    kind = mujoco.mjtState.mjSTATE_INTEGRATION
    physics = np.empty(mujoco.mj_stateSize(base.model, kind))
    mujoco.mj_getState(base.model, base.data, physics, kind)
    return {"mujoco": physics, "np_random": np.asarray(json.dumps(base.np_random.bit_generator.state))}


def _set_gym_mujoco_state(base: Any, state: dict[str, np.ndarray]) -> None:
    import mujoco

    mujoco.mj_setState(base.model, base.data, np.asarray(state["mujoco"], np.float64),
                       mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(base.model, base.data)
    base.np_random.bit_generator.state = json.loads(str(state["np_random"]))


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def vector_env_state(venv: gym.vector.VectorEnv) -> dict[str, np.ndarray] | None:
    """Every env's sim_state as flat arrays "<env>.<field>" (sync or async vector env), or None when
    some env cannot be snapshotted."""
    states = venv.get_attr("sim_state")
    if any(st is None for st in states):
        return None
    return {f"{i}.{k}": v for i, st in enumerate(states) for k, v in st.items()}


def restore_vector_env_state(venv: gym.vector.VectorEnv, flat: dict[str, np.ndarray]) -> None:
    """Inverse of vector_env_state on a vector env of the same size that has been reset once."""
    states: list[dict[str, np.ndarray]] = [{} for _ in range(venv.num_envs)]
    for key, value in flat.items():
        i, _, name = key.partition(".")
        states[int(i)][name] = value
    venv.set_attr("sim_state", states)


def best_rewards(episode_rewards: list[np.ndarray], act_steps: int) -> np.ndarray:
    """Each episode's best reward (E,), as upstream's success accounting (agent/finetune/
    train_ppo_diffusion_agent.py) has it: its largest policy-step reward (the sum over an action chunk) divided
    by act_steps. episode_rewards: each finished episode's policy-step rewards (T_e,)."""
    return np.array([np.max(ep) / act_steps for ep in episode_rewards], np.float64)


def episode_successes(episode_rewards: list[np.ndarray], act_steps: int, threshold: float) -> np.ndarray:
    """Which episodes succeeded (E,) bool: best reward (best_rewards) at least the threshold; with sparse 0/1
    rewards, a whole chunk spent in the goal state."""
    return best_rewards(episode_rewards, act_steps) >= threshold


def success_metrics(episode_rewards: list[np.ndarray], act_steps: int, threshold: float) -> dict[str, float | None]:
    """Upstream's success rate (the share of episode_successes) and average best reward over finished episodes;
    None when no episode finished."""
    if not episode_rewards:
        return {"success_rate": None, "avg_best_reward": None}
    best = best_rewards(episode_rewards, act_steps)  # (E,)
    return {"success_rate": float(np.mean(best >= threshold)), "avg_best_reward": float(np.mean(best))}


@dataclass(frozen=True)
class GymSuite:
    """gymnasium's MuJoCo tasks by name ('hopper-medium-v2' -> Hopper-v5, or any registered id); no task
    success (upstream's threshold for them is 'not relevant')."""

    reports_success = False
    in_worker_processes = False
    frames_per_step = 0  # camera frames rendered per env step

    def make(self, name: str, max_episode_steps: int) -> gym.Env:
        return gym.make(gym_id(name), max_episode_steps=max_episode_steps)


EnvSuite = GymSuite | RobomimicSuite | RobomimicImageSuite
# upstream's suite wrapper name (env.wrappers.<name> in its configs) -> the suite it belongs to
ENV_SUITES: dict[str, type[GymSuite] | type[RobomimicSuite] | type[RobomimicImageSuite]] = {
    "mujoco_locomotion_lowdim": GymSuite, "robomimic_lowdim": RobomimicSuite,
    "robomimic_image": RobomimicImageSuite}


@dataclass(frozen=True)
class EnvSpec:
    name: str
    n_envs: int
    cond_steps: int
    act_steps: int
    max_episode_steps: int = 1000
    normalization: Normalization | None = None
    asynchronous: bool = False
    suite: EnvSuite = GymSuite()


def make_env(spec: EnvSpec) -> MultiStepLowdim:
    """One env of the spec: the suite's raw env under normalization, chunks and history."""
    return MultiStepLowdim(spec.suite.make(spec.name, spec.max_episode_steps), spec.normalization, spec.cond_steps,
                           spec.act_steps)


def _env_fn(spec: EnvSpec) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        return make_env(spec)

    return make


class _SpacesOnly(gym.Env):
    """A raw env that only has spaces: what gymnasium's AsyncVectorEnv builds in the parent process to read them."""

    def __init__(self, observation_space: gym.spaces.Space, action_space: gym.spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space


class _WorkerEnvFn:
    """make_env(spec) in a worker process. AsyncVectorEnv also calls its first env function once in the process that
    builds it, to read the spaces; there this gives an env with the spaces only (shared/data/robomimic.py
    RobomimicImageSuite.spaces), so a camera env never renders beside TensorFlow."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec, self.parent = spec, os.getpid()

    def __call__(self) -> gym.Env:
        spec = self.spec
        if os.getpid() != self.parent:
            return make_env(spec)
        if spec.normalization is None:
            raise ConfigError("camera envs need normalization_path (the state and action sizes come from it)")
        raw = _SpacesOnly(*spec.suite.spaces(spec.normalization.obs_min.size, spec.normalization.action_min.size))
        return MultiStepLowdim(raw, spec.normalization, spec.cond_steps, spec.act_steps)


def make_vector_env(spec: EnvSpec) -> gym.vector.VectorEnv:
    """Vector env (not yet reset); an env whose episode ends is reset within the same step."""
    fns: list[Callable[[], gym.Env]] = [_env_fn(spec) for _ in range(spec.n_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if spec.asynchronous and spec.suite.in_worker_processes:  # in-process camera envs (no TF there) stay as they are
        fns = [_WorkerEnvFn(spec) for _ in range(spec.n_envs)]
    if spec.asynchronous:
        venv: Any = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    else:
        venv = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    return venv
