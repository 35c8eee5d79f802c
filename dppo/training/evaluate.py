"""Evaluate a policy: deterministic sampling (as upstream's evaluation) over whole episodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, make_eval_agent, noise_shape
from dppo.envs.runtime import env_spec, run_vector_env, set_rollout_threads
from shared.data.envs import d4rl_normalized_score, success_metrics
from shared.errors import ConfigError
from shared.settings import EvalConfig, FinetuneConfig


def episode_rewards(agent: Any, cfg: FinetuneConfig | EvalConfig, n_episodes: int, seed: int) -> list[np.ndarray]:
    """The policy-step rewards (T_e,) of the first episode of each of n_episodes envs (reset with seeds
    seed..seed+n-1)."""
    venv = run_vector_env(cfg, env_spec(cfg, n_envs=n_episodes))
    obs = venv.reset(seed=[seed + i for i in range(n_episodes)])[0]
    rng = np.random.default_rng([seed, 5])
    steps: list[np.ndarray] = []  # (N,) per policy step
    alive = [np.ones(n_episodes, bool)]
    try:
        while alive[-1].any():
            noise = rng.standard_normal(noise_shape(cfg, n_episodes)).astype(np.float32)
            actions = agent.act(obs, noise, deterministic=True)["actions"][:, : cfg.act_steps]
            obs, reward, term, trunc, _ = venv.step(actions)
            steps.append(np.asarray(reward, np.float64))
            alive.append(alive[-1] & ~(term | trunc))
    finally:
        venv.close()
    rewards, live = np.stack(steps), np.stack(alive[:-1])  # (T, N): live = the episode was running at step t
    return [rewards[live[:, e], e] for e in range(n_episodes)]


def evaluate(cfg: FinetuneConfig | EvalConfig, backend: str, n_episodes: int = 10,
             seed: int = 10_000) -> dict[str, Any]:
    """Deterministic returns of n_episodes whole episodes: the policy of a fine-tuning config (its
    base_policy_path) or of an upstream eval config."""
    if not cfg.base_policy_path:
        raise ConfigError("evaluation needs base_policy_path=CKPT: the policy to evaluate")
    set_rollout_threads(backend)
    agent = make_eval_agent(cfg, backend) if isinstance(cfg, EvalConfig) else make_agent(cfg, backend)
    episodes = episode_rewards(agent, cfg, n_episodes, seed)
    returns = np.array([ep.sum() for ep in episodes])
    score = d4rl_normalized_score(cfg.env_name, returns)
    threshold = cfg.env.best_reward_threshold_for_success
    success = (success_metrics(episodes, cfg.act_steps, threshold)
               if threshold is not None and cfg.env_suite.reports_success else {"success_rate": None})
    return {"backend": backend, "episodes": n_episodes, "return_mean": float(returns.mean()),
            "return_std": float(returns.std()), "returns": returns.tolist(),
            "d4rl_score_mean": None if score is None else float(np.mean(score)),
            "d4rl_score_std": None if score is None else float(np.std(score)), **success}
