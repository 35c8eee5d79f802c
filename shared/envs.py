"""gymnasium MuJoCo environments as DPPO sees them (framework-free).

Per env: raw obs -> normalized to [-1, 1] with the dataset's normalization file;
policy actions in [-1, 1] -> environment units; act_steps actions executed per policy
step with rewards summed; an observation history of cond_steps (oldest first,
repeated after a reset); terminated kept apart from truncated. The vector env resets an
env whose episode ended within the same step (gymnasium's SAME_STEP autoreset, which is
upstream's `reset_within_step`): the returned observation already belongs to the next
episode and the last one's is in info["final_obs"].
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from shared.dataset import Normalization
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
    """Normalization + action chunks + observation history (one env)."""

    def __init__(self, env: gym.Env, normalization: Normalization | None, cond_steps: int, act_steps: int) -> None:
        super().__init__(env)
        self.norm, self.cond_steps, self.act_steps = normalization, cond_steps, act_steps
        self.history: deque[np.ndarray] = deque(maxlen=cond_steps)
        obs_dim = env.observation_space.shape[0]
        act_dim = env.action_space.shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (cond_steps, obs_dim), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (act_steps, act_dim), np.float32)

    def _obs(self, raw: np.ndarray) -> np.ndarray:
        return (raw if self.norm is None else self.norm.normalize_obs(raw)).astype(np.float32)

    def _stacked(self) -> np.ndarray:
        return np.stack(self.history)  # (To, Do), most recent last

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


@dataclass(frozen=True)
class EnvSpec:
    name: str
    n_envs: int
    cond_steps: int
    act_steps: int
    max_episode_steps: int = 1000
    normalization: Normalization | None = None
    asynchronous: bool = False


def _env_fn(spec: EnvSpec) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        env = gym.make(gym_id(spec.name), max_episode_steps=spec.max_episode_steps)
        return MultiStepLowdim(env, spec.normalization, spec.cond_steps, spec.act_steps)

    return make


def make_vector_env(spec: EnvSpec) -> gym.vector.VectorEnv:
    """Vector env (not yet reset); an env whose episode ends is reset within the same step."""
    fns = [_env_fn(spec) for _ in range(spec.n_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if spec.asynchronous:
        venv: Any = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    else:
        venv = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    return venv
