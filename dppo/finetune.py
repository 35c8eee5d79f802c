"""Fine-tuning driver shared by both frameworks and every algorithm: the iteration loop
(`run_iterations`: rollouts, evaluation iterations, metrics, checkpoints, exact resume) and PPO's
part of it (`PPOTrainer`, DPPO and Gaussian PPO); RWR's and AWR's parts are dppo/rwr.py and dppo/awr.py.

PPO, read top to bottom like CleanRL: collect n_steps x n_envs policy steps, score them
(values, log-probs), scale rewards, GAE, then update_epochs of shuffled minibatches.
All randomness the policy uses (sampling noise, minibatch order) is drawn in numpy
keyed by (seed, iteration, step), so a torch run and a TF run see the same numbers,
and a resumed run the same as an uninterrupted one.

Iterations chain as upstream's: envs are reset before an iteration only when
env.reset_at_iteration is set or the iteration is an evaluation one; otherwise the episodes
running at the end of the last iteration go on, and that iteration's last done flags become
this one's first episode-start markers (for the reward scaler's running return and for
counting episodes). A checkpoint therefore carries the vector env's simulator state, the last
observations and done flags, so that a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dppo.checkpoints import read_checkpoint
from dppo.progress import Progress
from dppo.run_files import RunDir
from dppo.run_lock import LogdirLock
from dppo.run_stop import close_all, with_kept_checkpoint
from dppo.runtime import env_spec, set_rollout_threads, set_update_threads
from dppo.tensorboard import ScalarWriter
from dppo.wandb_log import WandbLogger
from shared.checkpoint import Checkpoint
from shared.envs import d4rl_normalized_score, make_vector_env, restore_vector_env_state, vector_env_state
from shared.errors import (
    CheckpointError,
    EnvironmentFailedError,
    RunTerminated,
    TrainingDivergedError,
    WriteFailedError,
)
from shared.framework_seeds import framework_seed
from shared.returns import RunningRewardScaler, gae
from shared.settings import AWRConfig, AWRSettings, FinetuneConfig, PPOSettings, RWRConfig, RWRSettings

# The iteration loop reads these keys of PPOSettings, RWRSettings or AWRSettings (the same names in each).
LoopSettings = PPOSettings | RWRSettings | AWRSettings

# Upstream builds its RunningRewardScaler(n_envs) without passing train.gamma, so its running
# return is always discounted with the scaler's default.
UPSTREAM_REWARD_SCALE_GAMMA = 0.99


def _noise_rng(seed: int, itr: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, itr, step, 2])


def make_reward_scaler(s: PPOSettings) -> RunningRewardScaler | None:
    """The running reward scaler, discounting with train.reward_scale_gamma (None: upstream's 0.99)."""
    if not s.reward_scale_running:
        return None
    gamma = UPSTREAM_REWARD_SCALE_GAMMA if s.reward_scale_gamma is None else s.reward_scale_gamma
    return RunningRewardScaler(s.n_envs, gamma=gamma)


def is_eval_iteration(itr: int, s: LoopSettings) -> bool:
    """Every val_freq-th iteration evaluates (deterministic sampling, no update) unless train.force_train."""
    return itr % s.val_freq == 0 and not s.force_train


def resets_envs(itr: int, s: LoopSettings) -> bool:
    """Whether all envs are reset before iteration `itr`, as upstream's driver actually decides it:
    env.reset_at_iteration, or an evaluation iteration. Upstream also names "right after an
    evaluation iteration", but it overwrites last_itr_eval with this iteration's eval_mode just
    before testing it, so that case never fires; env.reset_after_eval_iteration turns it on."""
    after_eval = itr > 0 and is_eval_iteration(itr - 1, s)
    return s.reset_at_iteration or is_eval_iteration(itr, s) or (s.reset_after_eval_iteration and after_eval)


def is_checkpoint_iteration(itr: int, s: LoopSettings) -> bool:
    """Upstream's schedule: after iterations 0, save_model_freq, 2 * save_model_freq, ... and the last."""
    return itr % s.save_model_freq == 0 or itr == s.n_train_itr - 1


def iteration_start(venv: Any, obs: np.ndarray, done: np.ndarray, fresh: bool, itr: int,
                    s: LoopSettings) -> tuple[np.ndarray, np.ndarray, bool]:
    """(observations, first0, reset) to start iteration `itr` from: all envs reset (first0 = 1) when
    resets_envs says so, else the running episodes go on and first0 is the last iteration's done flags.
    `fresh`: obs come from a reset no iteration has used yet (the run's first, seeded one)."""
    reset = resets_envs(itr, s)
    if reset and not fresh:
        obs = venv.reset()[0]
    return obs, (np.ones(s.n_envs) if reset or fresh else np.asarray(done, np.float64)), reset


def rollout(agent: Any, venv: Any, obs: np.ndarray, n_steps: int, act_steps: int, deterministic: bool,
            seed: int, itr: int, noise_shape: Callable[[int], tuple[int, ...]],
            first0: np.ndarray | None = None) -> dict[str, Any]:
    """n_steps policy steps in every env. Arrays are (T, N, ...); `first` marks episode starts (T+1, N):
    first[0] = first0 (1 where the env was just reset, else the last iteration's done flag; all 1 if
    None), first[t + 1] = the episode ended at step t (the env was reset within that step).
    `next_obs_steps` (T, N, To, Do) is where each step led (an ended episode's final observation, not
    the reset one), for the replay-buffer algorithms' transitions; `next_obs` the envs' observations now."""
    n = obs.shape[0]
    obs_t, next_obs_t, rewards, terminated = [], [], np.zeros((n_steps, n)), np.zeros((n_steps, n))
    first = np.zeros((n_steps + 1, n))
    first[0] = 1.0 if first0 is None else first0
    samples: dict[str, list[np.ndarray]] = {}
    for step in range(n_steps):
        noise = _noise_rng(seed, itr, step).standard_normal(noise_shape(n)).astype(np.float32)
        sample = agent.act(obs, noise, deterministic)
        obs_t.append(obs)
        for k, v in sample.items():
            samples.setdefault(k, []).append(v)
        try:
            obs, reward, term, trunc, info = venv.step(sample["actions"][:, :act_steps])
        except (EOFError, BrokenPipeError, ConnectionError, RuntimeError, OSError) as exc:
            raise EnvironmentFailedError(
                f"environment step failed at iteration {itr}, step {step} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'worker died'})") from None
        if not np.all(np.isfinite(reward)):
            raise TrainingDivergedError(f"environment returned a non-finite reward at iteration {itr}, step {step}")
        rewards[step], terminated[step] = reward, term
        first[step + 1] = np.logical_or(term, trunc)
        next_obs_t.append(step_next_obs(obs, info))
    return {"obs": np.stack(obs_t), "samples": {k: np.stack(v) for k, v in samples.items()},
            "rewards": rewards, "terminated": terminated, "first": first, "next_obs": obs,
            "next_obs_steps": np.stack(next_obs_t)}


def step_next_obs(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """The observation each env reached in a step (N, To, Do): the returned one, except where the episode
    ended within the step (the env was reset), whose last observation is in info["final_obs"]."""
    ended = np.flatnonzero(info.get("_final_obs", ())) if "final_obs" in info else ()
    if len(ended) == 0:
        return obs
    out = np.array(obs, copy=True)
    for i in ended:
        out[i] = info["final_obs"][i]
    return out


def finished_episode_returns(rewards: np.ndarray, first: np.ndarray) -> list[float]:
    """Returns of the episodes between consecutive start markers of `first` (T+1, N), env by env, as
    upstream counts them: the steps before the first marker (an episode carried over from the last
    iteration) and after the last one are not counted, nor are episodes of a single step."""
    out = []
    for e in range(rewards.shape[1]):
        starts = np.flatnonzero(first[:, e] == 1)
        out += [float(rewards[a:b, e].sum()) for a, b in zip(starts[:-1], starts[1:]) if b - a > 1]
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
            terms = agent.update({k: v[rows] for k, v in data.items()}, update_actor, minibatch=b)
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
    sc = score_steps(agent, ro, s, scaler)
    values, logprobs, advantages, returns = sc["values"], sc["logprobs"], sc["advantages"], sc["returns"]
    f32 = np.float32
    extra = {}
    if bc_noise_shape is not None:  # teacher-chain noise for the BC term, drawn once per rollout
        extra["bc_noise"] = np.random.default_rng([seed, itr, 4]).standard_normal((T * N, *bc_noise_shape)).astype(f32)
    return {"obs": sc["obs"].astype(f32), **{k: v.astype(f32) for k, v in sc["samples"].items()}, **extra,
            "logprobs": logprobs.astype(f32), "values": values.reshape(-1).astype(f32),
            "advantages": advantages.reshape(-1).astype(f32), "returns": returns.reshape(-1).astype(f32)}


def score_steps(agent: Any, ro: dict[str, Any], s: PPOSettings,
                scaler: RunningRewardScaler | None) -> dict[str, np.ndarray]:
    """The rollout's observations and samples flattened to (T*N, ...) rows, their values (T, N) and
    log-probs (T*N, ...), scaled rewards, advantages and returns (T, N, float64), as upstream: the
    scaler sees first[:-1], whose row 0 is carried over."""
    T, N = ro["rewards"].shape
    flat_obs = ro["obs"].reshape(T * N, *ro["obs"].shape[2:])
    flat_samples = {k: v.reshape(T * N, *v.shape[2:]) for k, v in ro["samples"].items()}
    values, logprobs = evaluate_in_chunks(agent, flat_obs, flat_samples, s.logprob_batch_size)
    values = np.asarray(values, np.float64).reshape(T, N)
    rewards = ro["rewards"]
    if scaler is not None:
        rewards = scaler(rewards.T, ro["first"][:-1].T).T
    next_value = np.asarray(agent.value(ro["next_obs"]), np.float64)
    advantages, returns = gae(rewards * s.reward_scale_const, values, next_value, ro["terminated"], s.gamma,
                              s.gae_lambda)
    return {"obs": flat_obs, "samples": flat_samples, "values": values, "logprobs": logprobs, "rewards": rewards,
            "advantages": advantages, "returns": returns}


def evaluate_in_chunks(agent: Any, obs: np.ndarray, samples: dict[str, np.ndarray],
                       chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """agent.evaluate over consecutive blocks of `chunk` rows (train.logprob_batch_size), concatenated."""
    parts = [agent.evaluate(obs[i:i + chunk], {k: v[i:i + chunk] for k, v in samples.items()})
             for i in range(0, len(obs), chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def explained_variance(values: np.ndarray, returns: np.ndarray) -> float:
    var = np.var(returns)
    return float("nan") if var == 0 else float(1.0 - np.var(returns - values) / var)


# Trainers of the fine-tuning algorithms besides PPO, by the config's `algorithm`: (module, class).
BASELINE_TRAINERS = {
    "rwr": ("dppo.rwr", "RWRTrainer"),
    "awr": ("dppo.awr", "AWRTrainer"),
    "qsm": ("dppo.qsm", "QSMTrainer"),
    "dipo": ("dppo.dipo", "DIPOTrainer"),
    "dql": ("dppo.dql", "DQLTrainer"),
    "idql": ("dppo.idql", "IDQLTrainer"),
}


def make_trainer(cfg: Any, backend: str) -> Any:
    """The trainer (the algorithm's part of the loop) for a fine-tuning config: PPO, or a baseline's."""
    name = getattr(cfg, "algorithm", "ppo")
    if name in BASELINE_TRAINERS:
        import importlib

        module, cls = BASELINE_TRAINERS[name]
        return getattr(importlib.import_module(module), cls)(cfg, backend)
    return PPOTrainer(cfg, backend)


def run_finetune(cfg: Any, backend: str, quiet: bool = False) -> dict[str, Any]:
    """Fine-tune (or resume) per cfg, holding the logdir's lock; returns a summary. Raises UserError
    subclasses on bad input, RunTerminated on SIGTERM."""
    with LogdirLock(cfg.logdir):
        return run_iterations(cfg, backend, make_trainer(cfg, backend), quiet)


class PPOTrainer:
    """PPO's part of the fine-tuning loop (DPPO and Gaussian PPO): score the rollout, GAE, minibatch updates.

    What run_iterations asks of a trainer: `algorithm`, `optimizer_group` (the checkpoint group a
    weights-only checkpoint lacks), `settings` (the loop's keys), `agent` (act, seed_rng),
    `noise_shape(n)`, `restore(ckpt, done_itr)`, `learning_rates()`, `train(rollout, itr)`,
    `end_iteration(itr)` and `state_groups()`."""

    algorithm = "ppo"
    optimizer_group = "actor_optimizer"

    def __init__(self, cfg: FinetuneConfig, backend: str) -> None:
        from dppo.agents import bc_noise_shape, make_agent

        self.cfg, self.settings = cfg, cfg.ppo
        self.algorithm = "ppo_exact" if cfg.is_exact else "ppo"  # checkpoints record it
        self.agent = make_agent(cfg, backend)
        self.scaler = make_reward_scaler(self.settings)
        self.bc_shape = bc_noise_shape(cfg)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        from dppo.agents import noise_shape

        return noise_shape(self.cfg, n)

    def restore(self, ckpt: Checkpoint, done_itr: int) -> None:
        self.agent.load_groups(ckpt.groups, *_scheduler_steps(done_itr + 1, self.settings))
        if self.scaler is not None and "reward_scaler" in ckpt.groups:
            self.scaler.load_state(ckpt.groups["reward_scaler"])

    def learning_rates(self) -> dict[str, float]:
        return {"actor_lr": self.agent.actor_lr, "critic_lr": self.agent.critic_lr}

    def train(self, ro: dict[str, Any], itr: int, seed: int) -> dict[str, float]:
        s = self.settings
        data = score_rollout(self.agent, ro, s, self.scaler, seed, itr, self.bc_shape)
        record = ppo_update(self.agent, data, s, seed, itr)
        record["explained_variance"] = explained_variance(data["values"], data["returns"])
        return record

    def end_iteration(self, itr: int) -> None:
        self.agent.end_iteration(itr >= self.settings.n_critic_warmup_itr)

    def state_groups(self) -> dict[str, Any]:
        groups = self.agent.state_groups()
        if self.scaler is not None:
            groups["reward_scaler"] = self.scaler.state()
        return groups


def _resume_point(cfg: FinetuneConfig | RWRConfig | AWRConfig, run: RunDir, trainer: Any
                  ) -> tuple[Checkpoint | None, Path | str | None]:
    """(checkpoint, its path): resume=PATH, else the logdir's latest; (None, None) without one."""
    resume_from = cfg.resume or run.latest_checkpoint()
    if not resume_from:
        return None, None
    ckpt = read_checkpoint(resume_from)
    if ckpt.meta.get("kind") != "finetune" or "itr" not in ckpt.meta or "model" not in ckpt.groups:
        raise CheckpointError(f"{resume_from} is not a fine-tuning checkpoint; to start fine-tuning from its "
                              "policy pass it as base_policy_path")
    algorithm = ckpt.meta.get("algorithm", "ppo")
    if algorithm != trainer.algorithm:
        raise CheckpointError(f"{resume_from} is a {algorithm.upper()} checkpoint; this config fine-tunes with "
                              f"{trainer.algorithm.upper()}")
    if trainer.optimizer_group not in ckpt.groups and not cfg.resume_fresh_optimizer:
        raise CheckpointError(f"{resume_from} has no optimizer state (weights only); add resume_fresh_optimizer=true "
                              "to continue from its weights with fresh optimizers")
    return ckpt, resume_from


def run_iterations(cfg: FinetuneConfig | RWRConfig | AWRConfig, backend: str, trainer: Any,
                   quiet: bool) -> dict[str, Any]:
    """The fine-tuning loop every algorithm shares: rollouts (evaluation ones deterministic), the trainer's
    update on training iterations, metrics, checkpoints with the envs' state, exact resume."""
    s = trainer.settings
    set_rollout_threads(backend)
    seed = cfg.seed
    run = RunDir(cfg.logdir)
    run.remove_stale_temp_files()
    ckpt, resume_from = _resume_point(cfg, run, trainer)
    agent = trainer.agent
    start = 0
    if ckpt is not None:
        done_itr = int(ckpt.meta["itr"])
        trainer.restore(ckpt, done_itr)
        start = done_itr + 1
        fresh_opt = "" if trainer.optimizer_group in ckpt.groups else " with fresh optimizers"
        print(f"resumed from {resume_from} (iteration {done_itr}){fresh_opt}", file=sys.stderr)
    run.truncate_metrics("itr", start - 1 if ckpt is not None else None)  # no checkpoint: start clean
    run.write_config(cfg.raw)

    spec = env_spec(cfg)
    writer = ScalarWriter(run.root / "tensorboard", backend)
    venv = make_vector_env(spec)
    env_failed = False
    # Seeded once, as upstream seeds its vector env once; later resets draw from the envs' own RNGs.
    obs = venv.reset(seed=[seed + i for i in range(s.n_envs)])[0]
    done, fresh = np.ones(s.n_envs), True  # fresh: obs come from a reset not yet used by an iteration
    if ckpt is not None:
        obs, done, fresh = _restore_envs(venv, ckpt, obs, s, seed, start)
    wandb = WandbLogger(cfg.wandb, cfg.raw)
    progress = Progress(s.n_train_itr, start, "itr", quiet, f"finetune [{backend}]")
    steps_per_itr = s.n_steps * s.n_envs * cfg.act_steps  # counted in training iterations only, as upstream
    env_steps = sum(steps_per_itr for i in range(start) if not is_eval_iteration(i, s))
    last_saved, record = resume_from, {}
    try:
        for itr in range(start, s.n_train_itr):
            tic = time.perf_counter()
            agent.seed_rng(framework_seed(seed, itr))
            eval_mode = is_eval_iteration(itr, s)
            obs, first0, reset = iteration_start(venv, obs, done, fresh, itr, s)
            lrs = trainer.learning_rates()
            set_rollout_threads(backend)
            ro = rollout(agent, venv, obs, s.n_steps, cfg.act_steps, eval_mode, seed, itr, trainer.noise_shape,
                         first0)
            obs, done, fresh = ro["next_obs"], ro["first"][-1], False
            env_steps += 0 if eval_mode else steps_per_itr
            returns = finished_episode_returns(ro["rewards"], ro["first"])
            record = {"itr": itr, "env_steps": env_steps, "eval": eval_mode, "env_reset": bool(reset),
                      "avg_episode_reward": float(np.mean(returns)) if returns else None,
                      "num_episodes": len(returns), **lrs}
            if eval_mode:  # each episode's return, for a spread over episodes (dppo compare)
                record["episode_returns"] = returns
            if not eval_mode:
                set_update_threads(backend)
                record.update(trainer.train(ro, itr, seed))
            trainer.end_iteration(itr)
            score = d4rl_normalized_score(cfg.env_name, record["avg_episode_reward"] or 0.0)
            if score is not None and returns:
                record["d4rl_score"] = float(score)
            record["seconds"] = time.perf_counter() - tic
            run.append_metrics(record)
            tag = "eval" if eval_mode else "train"
            scalars = {f"{tag}/{k}": v for k, v in record.items() if isinstance(v, float)}
            writer.scalars(itr, scalars)
            wandb.log(itr, scalars)
            if is_checkpoint_iteration(itr, s):
                groups = trainer.state_groups()
                groups["rollout"] = {"obs": obs, "done": done}
                env_state = vector_env_state(venv)
                if env_state is not None:
                    groups["env"] = env_state
                meta = {"framework": backend, "itr": itr, "step": itr, "config": cfg.raw, "kind": "finetune",
                        "algorithm": trainer.algorithm}
                last_saved = run.save_checkpoint(itr, Checkpoint(groups, meta))
            progress.update(itr, mode="eval" if eval_mode else "train", reward=record["avg_episode_reward"])
    except EnvironmentFailedError as exc:
        env_failed = True
        kept = f"last checkpoint {last_saved} kept" if last_saved else "no checkpoint yet"
        raise EnvironmentFailedError(f"{exc}; {kept}; rerun the same command to resume") from None
    except (WriteFailedError, RunTerminated) as exc:
        raise with_kept_checkpoint(exc, last_saved) from None
    finally:
        progress.close()
        close_all(writer, wandb)
        with contextlib.suppress(Exception):  # after a worker died, stop the others instead of waiting on them
            venv.close(terminate=True) if env_failed and spec.asynchronous else venv.close()
    return {"iterations": s.n_train_itr, "last": record, "checkpoint": str(last_saved), "logdir": str(run.root)}


def _restore_envs(venv: Any, ckpt: Checkpoint, obs: np.ndarray, s: LoopSettings, seed: int,
                  start: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(obs, done flags, fresh) to continue from a checkpoint: its simulator state when it has one
    for this many envs; otherwise (an env that is not MuJoCo, an older checkpoint) every env is
    reset, seeded by iteration, and the next iteration starts new episodes."""
    saved = ckpt.groups.get("rollout")
    if saved is not None and "env" in ckpt.groups and len(saved["obs"]) == s.n_envs:
        restore_vector_env_state(venv, dict(ckpt.groups["env"]))
        return np.asarray(saved["obs"]), np.asarray(saved["done"], np.float64), False
    print("checkpoint has no simulator state for these envs: resetting them", file=sys.stderr)
    return venv.reset(seed=[seed + 1000 * start + i for i in range(s.n_envs)])[0], np.ones(s.n_envs), True


def _scheduler_steps(iterations_done: int, s: PPOSettings) -> tuple[int, int]:
    """(actor, critic) scheduler steps taken after `iterations_done` iterations."""
    return max(0, iterations_done - s.n_critic_warmup_itr), iterations_done
