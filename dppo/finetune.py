"""PPO fine-tuning driver shared by both frameworks and both policy kinds (DPPO, Gaussian).

Read top to bottom like CleanRL: collect n_steps x n_envs policy steps, score them
(values, log-probs), scale rewards, GAE, then update_epochs of shuffled minibatches.
All randomness the policy uses (sampling noise, minibatch order) is drawn in numpy
keyed by (seed, iteration, step), so a torch run and a TF run see the same numbers,
and a resumed run the same as an uninterrupted one. Envs are reset with seeds keyed by
iteration right after each checkpoint, so resuming needs no simulator state.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dppo.run_files import RunDir
from dppo.runtime import env_spec, progress_bar, set_rollout_threads, set_update_threads
from dppo.tensorboard import ScalarWriter
from dppo.wandb_log import WandbLogger
from shared.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shared.envs import d4rl_normalized_score, make_vector_env
from shared.errors import CheckpointError, EnvironmentFailedError, TrainingDivergedError
from shared.returns import RunningRewardScaler, gae
from shared.settings import FinetuneConfig, PPOSettings


def _noise_rng(seed: int, itr: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, itr, step, 2])


def rollout(agent: Any, venv: Any, obs: np.ndarray, n_steps: int, act_steps: int, deterministic: bool,
            seed: int, itr: int, noise_shape: Callable[[int], tuple[int, ...]]) -> dict[str, Any]:
    """n_steps policy steps in every env. Arrays are (T, N, ...); `first` marks episode starts (T+1, N)."""
    n = obs.shape[0]
    obs_t, rewards, terminated = [], np.zeros((n_steps, n)), np.zeros((n_steps, n))
    first = np.zeros((n_steps + 1, n))
    first[0] = 1.0
    samples: dict[str, list[np.ndarray]] = {}
    for step in range(n_steps):
        noise = _noise_rng(seed, itr, step).standard_normal(noise_shape(n)).astype(np.float32)
        sample = agent.act(obs, noise, deterministic)
        obs_t.append(obs)
        for k, v in sample.items():
            samples.setdefault(k, []).append(v)
        try:
            obs, reward, term, trunc, _ = venv.step(sample["actions"][:, :act_steps])
        except (EOFError, BrokenPipeError, ConnectionError, RuntimeError, OSError) as exc:
            raise EnvironmentFailedError(
                f"environment step failed at iteration {itr}, step {step} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'worker died'})") from None
        if not np.all(np.isfinite(reward)):
            raise TrainingDivergedError(f"environment returned a non-finite reward at iteration {itr}, step {step}")
        rewards[step], terminated[step] = reward, term
        first[step + 1] = np.logical_or(term, trunc)
    return {"obs": np.stack(obs_t), "samples": {k: np.stack(v) for k, v in samples.items()},
            "rewards": rewards, "terminated": terminated, "first": first, "next_obs": obs}


def finished_episode_returns(rewards: np.ndarray, first: np.ndarray) -> list[float]:
    """Returns of episodes that both started and ended inside this rollout (as upstream counts them)."""
    out = []
    for e in range(rewards.shape[1]):
        starts = np.flatnonzero(first[:, e])
        out += [float(rewards[a:b, e].sum()) for a, b in zip(starts[:-1], starts[1:])]
    return out


def ppo_update(agent: Any, data: dict[str, np.ndarray], s: PPOSettings, seed: int, itr: int) -> dict[str, float]:
    """update_epochs over shuffled minibatches of the flattened rollout; stops early past target_kl."""
    total = len(data["advantages"])
    num_batches = max(1, total // s.batch_size)  # the remainder is skipped, as upstream
    update_actor = itr >= s.n_critic_warmup_itr
    logs: dict[str, list[float]] = {}
    for epoch in range(s.update_epochs):
        order = np.random.default_rng([seed, itr, epoch, 3]).permutation(total)
        stop = False
        for b in range(num_batches):
            rows = order[b * s.batch_size:(b + 1) * s.batch_size]
            terms = agent.update({k: v[rows] for k, v in data.items()}, update_actor)
            for k, v in terms.items():
                logs.setdefault(k, []).append(v)
            if not all(math.isfinite(v) for v in terms.values()):
                raise TrainingDivergedError(f"non-finite PPO loss at iteration {itr}, epoch {epoch}, batch {b}")
            if s.target_kl is not None and terms["approx_kl"] > s.target_kl:
                stop = True
                break
        if stop:
            break
    return {k: float(np.mean(v)) for k, v in logs.items()}


def score_rollout(agent: Any, ro: dict[str, Any], s: PPOSettings, scaler: RunningRewardScaler | None,
                  seed: int = 0, itr: int = 0, bc_noise_shape: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Values, old log-probs, scaled rewards, GAE; flattened to (T*N, ...) rows for the update."""
    T, N = ro["rewards"].shape
    flat_obs = ro["obs"].reshape(T * N, *ro["obs"].shape[2:])
    flat_samples = {k: v.reshape(T * N, *v.shape[2:]) for k, v in ro["samples"].items()}
    values, logprobs = agent.evaluate(flat_obs, flat_samples)
    values = values.reshape(T, N)
    rewards = ro["rewards"]
    if scaler is not None:
        rewards = scaler(rewards.T, ro["first"][:-1].T).T
    advantages, returns = gae(rewards * s.reward_scale_const, values, agent.value(ro["next_obs"]),
                              ro["terminated"], s.gamma, s.gae_lambda)
    f32 = np.float32
    extra = {}
    if bc_noise_shape is not None:  # teacher-chain noise for the BC term, drawn once per rollout
        extra["bc_noise"] = np.random.default_rng([seed, itr, 4]).standard_normal((T * N, *bc_noise_shape)).astype(f32)
    return {"obs": flat_obs.astype(f32), **{k: v.astype(f32) for k, v in flat_samples.items()}, **extra,
            "logprobs": logprobs.astype(f32), "values": values.reshape(-1).astype(f32),
            "advantages": advantages.reshape(-1).astype(f32), "returns": returns.reshape(-1).astype(f32)}


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    var = np.var(returns)
    return float("nan") if var == 0 else float(1.0 - np.var(returns - values) / var)


def run_finetune(cfg: FinetuneConfig, backend: str, quiet: bool = False) -> dict[str, Any]:
    from dppo.agents import bc_noise_shape, make_agent, noise_shape

    s = cfg.ppo
    set_rollout_threads(backend)
    seed = cfg.seed
    run = RunDir(cfg.logdir)
    agent = make_agent(cfg, backend)
    scaler = RunningRewardScaler(s.n_envs, gamma=s.gamma) if s.reward_scale_running else None
    start = 0
    resume_from = cfg.resume or run.latest_checkpoint()
    if resume_from:
        ckpt = load_checkpoint(resume_from)
        if ckpt.meta.get("kind") != "finetune" or "itr" not in ckpt.meta or "actor_optimizer" not in ckpt.groups:
            raise CheckpointError(f"{resume_from} is not a resumable fine-tuning checkpoint (no optimizer state); "
                                  "pass it as base_policy_path")
        done = int(ckpt.meta["itr"])
        agent.load_groups(ckpt.groups, *_scheduler_steps(done + 1, s))
        if scaler is not None and "reward_scaler" in ckpt.groups:
            scaler.load_state(ckpt.groups["reward_scaler"])
        run.truncate_metrics("itr", done)
        start = done + 1
        print(f"resumed from {resume_from} (iteration {done})", file=sys.stderr)
    run.write_config(cfg.raw)

    bc_shape = bc_noise_shape(cfg)
    spec = env_spec(cfg)
    venv = make_vector_env(spec)
    env_failed = False
    obs = venv.reset(seed=[seed + 1000 * start + i for i in range(s.n_envs)])[0]
    writer, wandb = ScalarWriter(run.root / "tensorboard", backend), WandbLogger(cfg.wandb, cfg.raw)
    bar = progress_bar(s.n_train_itr, start, "itr", quiet)
    env_steps = start * s.n_steps * s.n_envs * cfg.act_steps
    last_saved, record = resume_from, {}
    try:
        for itr in range(start, s.n_train_itr):
            tic = time.perf_counter()
            eval_mode = itr % s.val_freq == 0
            actor_lr, critic_lr = agent.actor_lr, agent.critic_lr
            set_rollout_threads(backend)
            ro = rollout(agent, venv, obs, s.n_steps, cfg.act_steps, eval_mode, seed, itr,
                         lambda n: noise_shape(cfg, n))
            obs = ro["next_obs"]
            env_steps += s.n_steps * s.n_envs * cfg.act_steps
            returns = finished_episode_returns(ro["rewards"], ro["first"])
            record = {"itr": itr, "env_steps": env_steps, "eval": eval_mode,
                      "avg_episode_reward": float(np.mean(returns)) if returns else None,
                      "num_episodes": len(returns), "actor_lr": actor_lr, "critic_lr": critic_lr}
            if not eval_mode:
                set_update_threads(backend)
                data = score_rollout(agent, ro, s, scaler, seed, itr, bc_shape)
                record.update(ppo_update(agent, data, s, seed, itr))
                record["explained_variance"] = explained_variance(data["values"], data["returns"])
            agent.end_iteration(itr >= s.n_critic_warmup_itr)
            score = d4rl_normalized_score(cfg.env_name, record["avg_episode_reward"] or 0.0)
            if score is not None and returns:
                record["d4rl_score"] = float(score)
            record["seconds"] = time.perf_counter() - tic
            run.append_metrics(record)
            tag = "eval" if eval_mode else "train"
            scalars = {f"{tag}/{k}": v for k, v in record.items() if isinstance(v, float)}
            writer.scalars(itr, scalars)
            wandb.log(itr, scalars)
            if (itr + 1) % s.save_model_freq == 0 or itr == s.n_train_itr - 1:
                last_saved = run.checkpoint_path(itr)
                groups = agent.state_groups()
                if scaler is not None:
                    groups["reward_scaler"] = scaler.state()
                meta = {"framework": backend, "itr": itr, "step": itr, "config": cfg.raw, "kind": "finetune"}
                save_checkpoint(last_saved, Checkpoint(groups, meta))
                obs = venv.reset(seed=[seed + 1000 * (itr + 1) + i for i in range(s.n_envs)])[0]
            bar.update(1)
    except EnvironmentFailedError as exc:
        env_failed = True
        kept = f"last checkpoint {last_saved} kept" if last_saved else "no checkpoint yet"
        raise EnvironmentFailedError(f"{exc}; {kept}; rerun the same command to resume") from None
    finally:
        bar.close()
        writer.close()
        wandb.close()
        with contextlib.suppress(Exception):  # after a worker died, stop the others instead of waiting on them
            venv.close(terminate=True) if env_failed and spec.asynchronous else venv.close()
    return {"iterations": s.n_train_itr, "last": record, "checkpoint": str(last_saved), "logdir": str(run.root)}


def _scheduler_steps(iterations_done: int, s: PPOSettings) -> tuple[int, int]:
    """(actor, critic) scheduler steps taken after `iterations_done` iterations."""
    return max(0, iterations_done - s.n_critic_warmup_itr), iterations_done
