"""Evaluate a policy: deterministic sampling (as upstream's evaluation) over whole episodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, make_eval_agent, noise_shape
from dppo.envs.runtime import env_spec, set_rollout_threads
from shared.data.envs import d4rl_normalized_score, make_vector_env
from shared.errors import ConfigError
from shared.settings import EvalConfig, FinetuneConfig


def episode_returns(agent: Any, cfg: FinetuneConfig | EvalConfig, n_episodes: int, seed: int) -> np.ndarray:
    """Return of the first episode of each of n_episodes envs (reset with seeds seed..seed+n-1)."""
    venv = make_vector_env(env_spec(cfg, n_envs=n_episodes))
    obs = venv.reset(seed=[seed + i for i in range(n_episodes)])[0]
    rng = np.random.default_rng([seed, 5])
    returns, alive = np.zeros(n_episodes), np.ones(n_episodes, bool)
    try:
        while alive.any():
            noise = rng.standard_normal(noise_shape(cfg, n_episodes)).astype(np.float32)
            actions = agent.act(obs, noise, deterministic=True)["actions"][:, : cfg.act_steps]
            obs, reward, term, trunc, _ = venv.step(actions)
            returns += reward * alive
            alive &= ~(term | trunc)
    finally:
        venv.close()
    return returns


def evaluate(cfg: FinetuneConfig | EvalConfig, backend: str, n_episodes: int = 10,
             seed: int = 10_000) -> dict[str, Any]:
    """Deterministic returns of n_episodes whole episodes: the policy of a fine-tuning config (its
    base_policy_path) or of an upstream eval config."""
    if not cfg.base_policy_path:
        raise ConfigError("evaluation needs base_policy_path=CKPT: the policy to evaluate")
    set_rollout_threads(backend)
    agent = make_eval_agent(cfg, backend) if isinstance(cfg, EvalConfig) else make_agent(cfg, backend)
    returns = episode_returns(agent, cfg, n_episodes, seed)
    score = d4rl_normalized_score(cfg.env_name, returns)
    return {"backend": backend, "episodes": n_episodes, "return_mean": float(returns.mean()),
            "return_std": float(returns.std()), "returns": returns.tolist(),
            "d4rl_score_mean": None if score is None else float(np.mean(score)),
            "d4rl_score_std": None if score is None else float(np.std(score))}
