"""Make a demonstration dataset: roll out a PPO teacher (Gaussian baseline) stochastically and
save complete episodes in DPPO's npz layout with their normalization file and a note.

A teacher may have been trained on normalized observations (its config's normalization_path): it
then sees them normalized and its actions are mapped back to the env's scale, while the dataset
records the raw observations and env actions, normalized afterwards by the data's own min/max."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, noise_shape
from dppo.envs.runtime import env_spec, set_rollout_threads
from shared.checkpoint import atomic_write, load_checkpoint
from shared.data.dataset import Normalization
from shared.data.envs import d4rl_normalized_score, make_vector_env
from shared.errors import ConfigError
from shared.settings import FinetuneConfig


def collect_dataset(cfg: FinetuneConfig, teacher_checkpoint: str, out_dir: str, transitions: int,
                    backend: str = "torch", seed: int = 0) -> dict[str, Any]:
    """Roll out the teacher until `transitions` steps of complete episodes; write train.npz + normalization.npz."""
    if cfg.is_diffusion or cfg.act_steps != 1 or cfg.cond_steps != 1:
        raise ConfigError("data collection needs a Gaussian teacher config with act_steps=1 and cond_steps=1")
    set_rollout_threads(backend)
    agent = make_agent(cfg, backend)
    ckpt = load_checkpoint(teacher_checkpoint)
    agent.load_groups(ckpt.groups, 0, 0)
    spec = env_spec(cfg)
    teacher_norm = spec.normalization  # the teacher's view of the env; None: raw
    venv = make_vector_env(replace(spec, normalization=None))  # records raw observations
    n = cfg.env.n_envs
    obs = venv.reset(seed=[seed + i for i in range(n)])[0]  # (n, 1, Do) raw
    shape = lambda n: noise_shape(cfg, n)  # noqa: E731
    rng = np.random.default_rng(seed)
    open_eps: list[dict[str, list]] = [{"states": [], "actions": [], "rewards": [], "terminals": []} for _ in range(n)]
    done_eps: list[dict[str, np.ndarray]] = []
    total = 0
    while total < transitions:
        seen = obs if teacher_norm is None else teacher_norm.normalize_obs(obs).astype(np.float32)
        actions = np.clip(agent.act(seen, rng.standard_normal(shape(n)).astype(np.float32), False)["actions"], -1, 1)
        if teacher_norm is not None:  # (n, 1, Da) teacher's [-1, 1] -> the env's scale
            actions = teacher_norm.unnormalize_action(actions.astype(np.float64))
        next_obs, reward, term, trunc, _ = venv.step(actions)
        for e in range(n):
            ep = open_eps[e]
            ep["states"].append(obs[e, -1])
            ep["actions"].append(actions[e, 0])
            ep["rewards"].append(reward[e])
            ep["terminals"].append(term[e])
            if term[e] or trunc[e]:
                done_eps.append({k: np.asarray(v) for k, v in ep.items()})
                total += len(ep["rewards"])
                open_eps[e] = {"states": [], "actions": [], "rewards": [], "terminals": []}
        obs = next_obs
    venv.close()
    states = np.concatenate([ep["states"] for ep in done_eps])
    actions = np.concatenate([ep["actions"] for ep in done_eps])
    norm = Normalization.from_data(states, actions)
    returns = np.array([ep["rewards"].sum() for ep in done_eps])
    arrays = {
        "states": norm.normalize_obs(states).astype(np.float32),
        "actions": norm.normalize_action(actions).astype(np.float32),
        "rewards": np.concatenate([ep["rewards"] for ep in done_eps]).astype(np.float32),
        "terminals": np.concatenate([ep["terminals"] for ep in done_eps]).astype(bool),
        "traj_lengths": np.array([len(ep["rewards"]) for ep in done_eps], np.int64),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(out / "train.npz", write)
    norm.save(out / "normalization.npz")
    stats = {
        "env": cfg.env_name, "teacher_checkpoint": str(teacher_checkpoint), "episodes": len(done_eps),
        "transitions": int(len(states)), "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "return_min": float(returns.min()), "return_max": float(returns.max()),
        "d4rl_score_mean": d4rl_normalized_score(cfg.env_name, float(returns.mean())), "seed": seed,
    }
    atomic_write(out / "stats.json", lambda tmp: Path(tmp).write_text(json.dumps(stats, indent=2)))
    return stats
