"""Evaluate a policy: deterministic sampling (as upstream's evaluation) over whole episodes, or, for a checkpoint
a fine-tuning run saved at one of its evaluation iterations, that iteration again as the run ran it.

`evaluate` plays the first episode of n fresh envs, env i reset with seed SEED + i. `replay_eval_iteration`
(`dppo eval --as-logged`) restores the envs where the evaluation iteration started (the checkpoint keeps their
state), draws the run's sampling noise (keyed by the run's seed, the iteration and the step) for the run's
train.n_steps steps and counts episodes as the run logged them (those that finished within the iteration), so
its per-episode returns and success flags are the logged ones (docs/guide/robomimic.md, "Logged and evaluated
success").

`evaluate(..., frames=True)` also returns the camera frames the policy was given (`dppo eval --frames`): the newest
frame of each observation exactly as the agent received it (after the env's wrappers and the vector env, uint8,
every camera), for the first GRID_ROWS episodes at GRID_STEPS policy steps spread over each episode."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent, make_eval_agent, noise_shape
from dppo.checkpoints.formats import read_checkpoint
from dppo.envs.runtime import env_spec, run_vector_env, set_rollout_threads
from dppo.training.finetune import finished_episodes, is_eval_iteration, make_trainer, rollout, rollout_plan
from shared.data import observations as ob
from shared.data.envs import d4rl_normalized_score, episode_successes, restore_vector_env_state, success_metrics
from shared.data.frames import spaced_steps
from shared.errors import CheckpointError, ConfigError
from shared.framework_seeds import framework_seed
from shared.settings import EvalConfig, FinetuneConfig

# What a rerun of an evaluation iteration must share with the run that logged it (upstream's key paths):
# the sampling noise's key, the envs, the iteration's length and the episodes' length and success threshold.
GRID_ROWS, GRID_STEPS = 4, 6  # `dppo eval --frames`: episodes (rows) and policy steps per episode (columns)
_AS_LOGGED_KEYS = (("seed",), ("env", "n_envs"), ("train", "n_steps"), ("act_steps",), ("env", "max_episode_steps"),
                   ("env", "best_reward_threshold_for_success"))


@dataclass
class Played:
    """What `play_episodes` saw: each env's first episode, the envs' speed, and optionally the camera frames."""

    episodes: list[np.ndarray]  # per env, the policy-step rewards of its first episode (T_e,)
    speed: dict[str, float | None]  # env_steps_per_s, frames_per_s (None for an env without cameras)
    frames: np.ndarray | None = None  # (R, GRID_STEPS, C, H, W) uint8, R = min(N, GRID_ROWS)


def play_episodes(agent: Any, cfg: FinetuneConfig | EvalConfig, n_episodes: int, seed: int,
                  frames: bool = False) -> Played:
    """The first episode of each of n_episodes envs (reset with seeds seed..seed+n-1), deterministic sampling.
    Speed is the time inside the vector env's steps (rendering included, the policy's not; every env steps
    act_steps times per policy step, each step rendering the suite's frames). With `frames`, the newest camera
    frame of the first GRID_ROWS envs' observations as the agent was given them, GRID_STEPS policy steps spread
    over each of those episodes."""
    spec = env_spec(cfg, n_envs=n_episodes)
    venv = run_vector_env(cfg, spec)
    obs = venv.reset(seed=[seed + i for i in range(n_episodes)])[0]
    env_seconds = 0.0
    rng = np.random.default_rng([seed, 5])
    steps: list[np.ndarray] = []  # (N,) per policy step
    shown: list[np.ndarray] = []  # (R, C, H, W) per policy step: the newest of the To frames
    alive = [np.ones(n_episodes, bool)]
    try:
        while alive[-1].any():
            if frames:
                shown.append(np.array(obs["rgb"][:GRID_ROWS, -1]))
            noise = rng.standard_normal(noise_shape(cfg, n_episodes)).astype(np.float32)
            actions = agent.act(obs, noise, deterministic=True)["actions"][:, : cfg.act_steps]
            tic = time.perf_counter()
            obs, reward, term, trunc, _ = venv.step(actions)
            env_seconds += time.perf_counter() - tic
            steps.append(np.asarray(reward, np.float64))
            alive.append(alive[-1] & ~(term | trunc))
    finally:
        venv.close()
    env_steps = len(steps) * n_episodes * cfg.act_steps
    seconds = max(env_seconds, 1e-9)
    speed = {"env_steps_per_s": env_steps / seconds,
             "frames_per_s": env_steps * spec.suite.frames_per_step / seconds if spec.suite.frames_per_step else None}
    rewards, live = np.stack(steps), np.stack(alive[:-1])  # (T, N): live = the episode was running at step t
    grid = None
    if frames:  # each row's steps while its episode ran, GRID_STEPS of them spread evenly
        stacked = np.stack(shown)  # (T, R, C, H, W)
        picks = [np.flatnonzero(live[:, e])[spaced_steps(int(live[:, e].sum()), GRID_STEPS)]
                 for e in range(stacked.shape[1])]
        grid = np.stack([stacked[picks[e], e] for e in range(stacked.shape[1])])  # (R, K, C, H, W)
    return Played([rewards[live[:, e], e] for e in range(n_episodes)], speed, grid)


def load_run_state(agent: Any, path: str, cfg: FinetuneConfig) -> None:
    """A DPPO fine-tuning checkpoint's schedule into an agent built from it: the number of fine-tuned denoising
    steps K (annealed when ft_denoising_steps_d > 0) is the run's at the checkpoint, not the config's start."""
    ckpt = read_checkpoint(path, cfg)
    ours = getattr(cfg, "algorithm", None)
    if ckpt.meta.get("kind") == "finetune" and ckpt.meta.get("algorithm") == ours and "dppo_schedule" in ckpt.groups:
        agent.load_groups(ckpt.groups, 0, 0)  # the model again, and its schedule (the optimizers are not used)


def _summary(cfg: FinetuneConfig | EvalConfig, backend: str, episodes: list[np.ndarray]) -> dict[str, Any]:
    """Returns, D4RL scores and (for suites with a task success) upstream's success accounting per episode."""
    returns = np.array([ep.sum() for ep in episodes], np.float64)
    score = d4rl_normalized_score(cfg.env_name, returns) if len(returns) else None
    threshold = cfg.env.best_reward_threshold_for_success
    reports = threshold is not None and cfg.env_suite.reports_success
    success = success_metrics(episodes, cfg.act_steps, threshold) if reports else {"success_rate": None}
    flags = episode_successes(episodes, cfg.act_steps, threshold).tolist() if reports else None
    return {"backend": backend, "episodes": len(episodes),
            "return_mean": float(returns.mean()) if len(returns) else None,
            "return_std": float(returns.std()) if len(returns) else None, "returns": returns.tolist(),
            "d4rl_score_mean": None if score is None else float(np.mean(score)),
            "d4rl_score_std": None if score is None else float(np.std(score)), **success, "successes": flags}


def evaluate(cfg: FinetuneConfig | EvalConfig, backend: str, n_episodes: int = 10,
             seed: int = 10_000, frames: bool = False) -> dict[str, Any]:
    """Deterministic returns of n_episodes whole episodes: the policy of a fine-tuning config (its
    base_policy_path) or of an upstream eval config. With `frames`, the result's "frames" (R, GRID_STEPS, C, H,
    W) uint8 are the camera frames the policy was given (`play_episodes`)."""
    if not cfg.base_policy_path:
        raise ConfigError("evaluation needs base_policy_path=CKPT: the policy to evaluate")
    if frames and not cfg.env_suite.frames_per_step:
        raise ConfigError("--frames draws the camera frames an image policy is given; this config's env renders no "
                          "cameras (a state policy: env.wrappers has no robomimic_image)")
    set_rollout_threads(backend)
    if isinstance(cfg, EvalConfig):
        agent = make_eval_agent(cfg, backend)
    else:
        agent = make_agent(cfg, backend)
        load_run_state(agent, cfg.base_policy_path, cfg)
    played = play_episodes(agent, cfg, n_episodes, seed, frames)
    return {**_summary(cfg, backend, played.episodes), "seed": seed, **played.speed,
            **({"frames": played.frames} if frames else {})}


def _at(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


def replay_eval_iteration(cfg: FinetuneConfig, backend: str) -> dict[str, Any]:
    """The evaluation iteration that saved cfg.base_policy_path, run again: its policy as `dppo eval` loads it,
    its envs restored to where the iteration started, the run's noise keys and the run's count of episodes."""
    path = cfg.base_policy_path
    if not isinstance(cfg, FinetuneConfig):
        raise ConfigError("--as-logged reruns a fine-tuning run's evaluation iteration: pass the run's fine-tuning "
                          "config, not an eval config")
    if not path:
        raise ConfigError("--as-logged needs base_policy_path=CKPT: a checkpoint the run saved at an evaluation "
                          "iteration")
    ckpt = read_checkpoint(path, cfg)
    if ckpt.meta.get("kind") != "finetune" or "itr" not in ckpt.meta:
        raise CheckpointError(f"{path} is not a fine-tuning checkpoint; --as-logged reruns the evaluation "
                              "iteration a fine-tuning run saved it at")
    itr = int(ckpt.meta["itr"])
    for key in _AS_LOGGED_KEYS:
        ours, run = _at(cfg.raw, key), _at(ckpt.config, key)
        if ours != run:
            raise ConfigError(f"--as-logged: this config's {'.'.join(key)} is {ours!r}, the run that saved {path} "
                              f"had {run!r}; pass the run's config and overrides")
    set_rollout_threads(backend)
    trainer = make_trainer(cfg, backend)
    if ckpt.meta.get("algorithm", "ppo") != trainer.algorithm:
        raise CheckpointError(f"{path} is a {ckpt.meta.get('algorithm', 'ppo').upper()} checkpoint; this config "
                              f"fine-tunes with {trainer.algorithm.upper()}")
    if "eval_start" not in ckpt.groups:
        what = ("an env that cannot be snapshotted, or a checkpoint from before --as-logged"
                if is_eval_iteration(itr, trainer.settings) else "a training iteration")
        raise CheckpointError(f"{path} holds no envs' state from the start of an evaluation iteration (it was saved "
                              f"at iteration {itr}: {what}); --as-logged needs a checkpoint saved at an evaluation "
                              "iteration")
    agent = trainer.agent  # built as `dppo eval` builds it: make_agent from base_policy_path
    load_run_state(agent, path, cfg)
    seed, n = cfg.seed, trainer.settings.n_envs
    venv = run_vector_env(cfg, env_spec(cfg))
    try:
        venv.reset(seed=[seed + i for i in range(n)])  # restoring needs envs that were reset once
        restore_vector_env_state(venv, dict(ckpt.groups["eval_start_env"]))
        agent.seed_rng(framework_seed(seed, itr))
        plan = rollout_plan(trainer, itr, True)
        ro = rollout(agent, venv, ob.from_group(ckpt.group("eval_start"), "obs"), plan.steps, cfg.act_steps, True,
                     seed, itr, trainer.noise_shape, None, plan.stop_after_episodes)
    finally:
        venv.close()
    episodes = finished_episodes(ro["rewards"], ro["first"])
    return {**_summary(cfg, backend, episodes), "iteration": itr, "envs": n, "steps": len(ro["rewards"])}
