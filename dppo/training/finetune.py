"""The fine-tuning loop shared by both frameworks and every algorithm (`run_iterations`: rollouts, evaluation
iterations, metrics, checkpoints, exact resume); each algorithm's part of it (its Trainer: scoring, updates)
is in dppo/algorithms/, found through the registry. All randomness the policy uses (sampling noise) is drawn
in numpy keyed by (seed, iteration, step), so a torch run and a TF run see the same numbers, and a resumed
run the same as an uninterrupted one.

Iterations chain as upstream's: envs are reset before an iteration only when
env.reset_at_iteration is set or the iteration is an evaluation one; otherwise the episodes
running at the end of the last iteration go on, and that iteration's last done flags become
this one's first episode-start markers (for the reward scaler's running return and for
counting episodes). A checkpoint therefore carries the vector env's simulator state, the last
observations and done flags, so that a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dppo.algorithms.plan import RolloutPlan
from dppo.algorithms.registry import driver
from dppo.checkpoints.formats import read_checkpoint
from dppo.envs.runtime import env_spec, run_vector_env, set_rollout_threads, set_update_threads
from dppo.runs.files import RunDir
from dppo.runs.lock import LogdirLock
from dppo.runs.phases import beside, count, iteration_done, phase
from dppo.runs.progress import Progress
from dppo.runs.stop import close_all, with_kept_checkpoint
from dppo.runs.tensorboard import ScalarWriter
from dppo.runs.wandb import WandbLogger
from shared.checkpoint import Checkpoint
from shared.data import observations as ob
from shared.data.envs import (
    d4rl_normalized_score,
    episode_successes,
    restore_vector_env_state,
    success_metrics,
    vector_env_state,
)
from shared.errors import (
    CheckpointError,
    ConfigError,
    EnvironmentFailedError,
    RunTerminated,
    TrainingDivergedError,
    WriteFailedError,
)
from shared.framework_seeds import framework_seed
from shared.settings import PPOSettings
from shared.settings.awr import AWRSettings
from shared.settings.run import PolicyRunConfig
from shared.settings.rwr import RWRSettings

# The iteration loop reads these keys of PPOSettings, RWRSettings or AWRSettings (the same names in each).
LoopSettings = PPOSettings | RWRSettings | AWRSettings

def _noise_rng(seed: int, itr: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, itr, step, 2])


def is_eval_iteration(itr: int, s: LoopSettings) -> bool:
    """Every val_freq-th iteration evaluates (deterministic sampling, no update) unless train.force_train; the
    Gaussian off-policy fine-tuners only from `first_eval_itr` on (once their exploration is over)."""
    return itr % s.val_freq == 0 and not s.force_train and itr >= getattr(s, "first_eval_itr", 0)


def rollout_plan(trainer: Any, itr: int, eval_mode: bool) -> RolloutPlan:
    """The trainer's plan for iteration `itr` where it has one, else n_steps steps of the agent."""
    own = getattr(trainer, "rollout_plan", None)
    return own(itr, eval_mode) if own is not None else RolloutPlan(trainer.settings.n_steps)


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


@contextlib.contextmanager
def env_failure(what: str) -> Iterator[None]:
    """A worker that died (or an env that raised) inside a vector env call becomes one EnvironmentFailedError
    line (exit 4) saying `what` happened, instead of the pipe's traceback."""
    try:
        yield
    except (EOFError, BrokenPipeError, ConnectionError, RuntimeError, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "worker died"
        raise EnvironmentFailedError(f"{what} ({type(exc).__name__}: {detail})") from None


def iteration_start(venv: Any, obs: ob.Obs, done: np.ndarray, fresh: bool, itr: int,
                    s: LoopSettings) -> tuple[ob.Obs, np.ndarray, bool]:
    """(observations, first0, reset) to start iteration `itr` from: all envs reset (first0 = 1) when
    resets_envs says so, else the running episodes go on and first0 is the last iteration's done flags.
    `fresh`: obs come from a reset no iteration has used yet (the run's first, seeded one)."""
    reset = resets_envs(itr, s)
    if reset and not fresh:
        with env_failure(f"environment reset failed at the start of iteration {itr}"):
            obs = venv.reset()[0]
    return obs, (np.ones(s.n_envs) if reset or fresh else np.asarray(done, np.float64)), reset


def rollout(agent: Any, venv: Any, obs: ob.Obs, n_steps: int, act_steps: int, deterministic: bool,
            seed: int, itr: int, noise_shape: Callable[[int], tuple[int, ...]],
            first0: np.ndarray | None = None, stop_after_episodes: int | None = None,
            overlap: bool = False) -> dict[str, Any]:
    """Up to n_steps policy steps in every env (fewer once stop_after_episodes episodes have ended, counted
    over all envs). Arrays are (T, N, ...) for the T steps taken; `first` marks episode starts (T+1, N):
    first[0] = first0 (1 where the env was just reset, else the last iteration's done flag; all 1 if
    None), first[t + 1] = the episode ended at step t (the env was reset within that step).
    `next_obs_steps` (T, N, To, Do) is where each step led (an ended episode's final observation, not
    the reset one), for the replay-buffer algorithms' transitions; `next_obs` the envs' observations now;
    `env_seconds` the time the envs spent stepping (rendering included). `overlap`: venv is a BlockVectorEnv
    whose two worker groups step one beside the other's sampling (steps_overlapped)."""
    n = ob.batch_len(obs)
    clock = {"env": 0.0}

    def draw_noise(step: int) -> np.ndarray:  # (noise_shape(n)): the same numbers however the envs are stepped
        return _noise_rng(seed, itr, step).standard_normal(noise_shape(n)).astype(np.float32)

    if overlap:
        steps = steps_overlapped(agent, venv, obs, n_steps, act_steps, deterministic, draw_noise,
                                 noise_batch_axis(noise_shape), itr, clock)
    else:
        steps = steps_in_turn(agent, venv, obs, n_steps, act_steps, deterministic, draw_noise, itr, clock)
    obs_t: list[ob.Obs] = []
    next_obs_t: list[ob.Obs] = []
    rewards_t: list[np.ndarray] = []
    terminated_t: list[np.ndarray] = []
    first_t = [np.ones(n) if first0 is None else np.asarray(first0, np.float64)]
    samples: dict[str, list[np.ndarray]] = {}
    ended = 0
    for step, seen, sample, (obs, reward, term, trunc, info) in steps:
        count("policy steps")
        obs_t.append(seen)
        for k, v in sample.items():
            samples.setdefault(k, []).append(v)
        if not np.all(np.isfinite(reward)):
            raise TrainingDivergedError(f"environment returned a non-finite reward at iteration {itr}, step {step}")
        done = np.logical_or(term, trunc)
        rewards_t.append(np.asarray(reward, np.float64))
        terminated_t.append(np.asarray(term, np.float64))
        first_t.append(done.astype(np.float64))
        next_obs_t.append(step_next_obs(obs, info))
        ended += int(done.sum())
        if stop_after_episodes is not None and ended >= stop_after_episodes:
            break
    T = len(rewards_t)

    def stacked(xs: list[Any], like: Any) -> Any:
        return ob.stack(xs) if T else ob.empty_steps(like)

    return {"obs": stacked(obs_t, obs), "samples": {k: np.stack(v) for k, v in samples.items()},
            "rewards": stacked(rewards_t, np.zeros(n)), "terminated": stacked(terminated_t, np.zeros(n)),
            "first": np.stack(first_t), "next_obs": obs, "next_obs_steps": stacked(next_obs_t, obs),
            "env_seconds": clock["env"]}


# One policy step as the step generators give it: (step, the observations the policy saw, its sample, the vector
# env's (obs, rewards, terminated, truncated, infos) for it).
PolicyStep = tuple[int, ob.Obs, dict[str, np.ndarray], tuple]


def steps_in_turn(agent: Any, venv: Any, obs: ob.Obs, n_steps: int, act_steps: int, deterministic: bool,
                  draw_noise: Callable[[int], np.ndarray], itr: int, clock: dict[str, float]) -> Iterator[PolicyStep]:
    """The policy samples for all envs, then all envs step; clock["env"] gathers the time inside venv.step."""
    for step in range(n_steps):
        with phase("action sampling"):
            sample = agent.act(obs, draw_noise(step), deterministic)
        tic = time.perf_counter()
        with phase("env stepping"), env_failure(f"environment step failed at iteration {itr}, step {step}"):
            result = venv.step(sample["actions"][:, :act_steps])
        clock["env"] += time.perf_counter() - tic
        yield step, obs, sample, result
        obs = result[0]


def steps_overlapped(agent: Any, venv: Any, obs: ob.Obs, n_steps: int, act_steps: int, deterministic: bool,
                     draw_noise: Callable[[int], np.ndarray], noise_axis: int, itr: int,
                     clock: dict[str, float]) -> Iterator[PolicyStep]:
    """The same steps with the envs in two worker groups (venv.overlap_groups, rows G0 then G1): the policy
    samples G0's actions and G0 starts stepping; the policy samples G1's while G0 steps, G1 starts; then G0's
    step is collected and its next actions sampled while G1 steps, and so on. Each group's rows get their own
    rows of the step's noise, so a row's numbers are the full batch's up to the float rounding of a smaller
    policy call. "env stepping" is then only the time the loop waits for a group; clock["env"] (and the profile's
    "env stepping in workers") is the time the workers spent stepping."""
    groups = venv.overlap_groups
    seen = [ob.take(obs, rows) for rows in groups]  # (rows of the group, To, Do) each
    before = venv.step_seconds
    last: tuple[ob.Obs, dict[str, np.ndarray]] | None = None
    for step in range(n_steps + 1):  # collect step - 1, sample and send step
        noise = draw_noise(step) if step < n_steps else None
        answers, parts = [], []
        for g, rows in enumerate(groups):
            if step > 0:
                with phase("env stepping"), env_failure(f"environment step failed at iteration {itr}, step {step - 1}"):
                    answer = venv.step_recv(g)
                answers += answer
                seen[g] = venv.group_obs(g, answer)
            if noise is not None:
                with phase("action sampling"):
                    part = agent.act(seen[g], np.take(noise, np.arange(rows.start, rows.stop), noise_axis),
                                     deterministic)
                with env_failure(f"environment step failed at iteration {itr}, step {step}"):
                    venv.step_send(g, part["actions"][:, :act_steps])
                parts.append(part)
        if last is not None:
            yield step - 1, last[0], last[1], venv.assemble(answers)
        if parts:
            last = ob.concat(seen), {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    spent = venv.step_seconds - before
    clock["env"] += spent
    beside("env stepping in workers", spent)


def noise_batch_axis(noise_shape: Callable[[int], tuple[int, ...]]) -> int:
    """The axis of a policy step's noise that holds one row per env (what env.overlap splits); a ConfigError
    when the algorithm's noise has none (e.g. several candidate chains per env in one axis)."""
    one, two = noise_shape(1), noise_shape(2)
    axes = [i for i, (a, b) in enumerate(zip(one, two)) if (a, b) == (1, 2)]
    if len(one) != len(two) or len(axes) != 1 or sum(a != b for a, b in zip(one, two)) != 1:
        raise ConfigError(f"env.overlap needs one row of sampling noise per env; this algorithm's step noise is "
                          f"{one} for one env and {two} for two")
    return axes[0]


def step_next_obs(obs: ob.Obs, info: dict[str, Any]) -> ob.Obs:
    """The observation each env reached in a step (N, To, Do) (or a camera env's dict): the returned one, except
    where the episode ended within the step (the env was reset), whose last observation is in info["final_obs"]."""
    ended = np.flatnonzero(info.get("_final_obs", ())) if "final_obs" in info else ()
    if len(ended) == 0:
        return obs
    return ob.copy_with_rows(obs, ended, [info["final_obs"][i] for i in ended])


def finished_episodes(rewards: np.ndarray, first: np.ndarray) -> list[np.ndarray]:
    """The policy-step rewards of the episodes between consecutive start markers of `first` (T+1, N), env by
    env, as upstream counts them: the steps before the first marker (an episode carried over from the last
    iteration) and after the last one are not counted, nor are episodes of a single step."""
    out = []
    for e in range(rewards.shape[1]):
        starts = np.flatnonzero(first[:, e] == 1)
        out += [rewards[a:b, e] for a, b in zip(starts[:-1], starts[1:]) if b - a > 1]
    return out


def finished_episode_returns(rewards: np.ndarray, first: np.ndarray) -> list[float]:
    """Returns of the finished episodes (finished_episodes)."""
    return [float(ep.sum()) for ep in finished_episodes(rewards, first)]


def make_trainer(cfg: Any, backend: str) -> Any:
    """The trainer (the algorithm's part of the loop) of a fine-tuning config: its driver's Trainer."""
    return driver(cfg).Trainer(cfg, backend)


def run_finetune(cfg: Any, backend: str, quiet: bool = False) -> dict[str, Any]:
    """Fine-tune (or resume) per cfg, holding the logdir's lock; returns a summary. Raises UserError
    subclasses on bad input, RunTerminated on SIGTERM."""
    with LogdirLock(cfg.logdir):
        return run_iterations(cfg, backend, make_trainer(cfg, backend), quiet)


def _resume_point(cfg: PolicyRunConfig, run: RunDir, trainer: Any
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


def run_iterations(cfg: PolicyRunConfig, backend: str, trainer: Any,
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

    if cfg.env.overlap:  # refused before any env starts
        noise_batch_axis(trainer.noise_shape)
    spec = env_spec(cfg)
    success_threshold = cfg.env.best_reward_threshold_for_success if spec.suite.reports_success else None
    writer = ScalarWriter(run.root / "tensorboard", backend)
    venv = run_vector_env(cfg, spec)
    env_failed = False
    # Seeded once, as upstream seeds its vector env once; later resets draw from the envs' own RNGs.
    with env_failure("environment reset failed at the start of the run"):
        obs = venv.reset(seed=[seed + i for i in range(s.n_envs)])[0]
    done, fresh = np.ones(s.n_envs), True  # fresh: obs come from a reset not yet used by an iteration
    if ckpt is not None:
        obs, done, fresh = _restore_envs(venv, ckpt, obs, s, seed, start)
    wandb = WandbLogger(cfg.wandb, cfg.raw)
    progress = Progress(s.n_train_itr, start, "itr", quiet, f"finetune [{backend}]")
    env_steps = _env_steps_before(ckpt, start, s, cfg.act_steps)  # training iterations only, as upstream
    log_freq = getattr(s, "log_freq", 1)  # training iterations between two metrics records
    last_saved, record, unrecorded = resume_from, {}, 0.0
    try:
        for itr in range(start, s.n_train_itr):
            tic = time.perf_counter()
            agent.seed_rng(framework_seed(seed, itr))
            eval_mode = is_eval_iteration(itr, s)
            obs, first0, reset = iteration_start(venv, obs, done, fresh, itr, s)
            # where an evaluation iteration that saves a checkpoint starts: `dppo eval --as-logged` reruns it
            eval_start = eval_start_groups(venv, obs) if eval_mode and is_checkpoint_iteration(itr, s) else {}
            lrs = trainer.learning_rates()
            set_rollout_threads(backend)
            plan = rollout_plan(trainer, itr, eval_mode)
            ro = rollout(plan.policy or agent, venv, obs, plan.steps, cfg.act_steps, eval_mode, seed, itr,
                         trainer.noise_shape, first0, plan.stop_after_episodes,
                         overlap=cfg.env.overlap and plan.stop_after_episodes is None)
            obs, done, fresh = ro["next_obs"], ro["first"][-1], False
            env_steps += 0 if eval_mode else len(ro["rewards"]) * s.n_envs * cfg.act_steps
            returns = finished_episode_returns(ro["rewards"], ro["first"])
            record = {"itr": itr, "env_steps": env_steps, "eval": eval_mode, "env_reset": bool(reset),
                      "avg_episode_reward": float(np.mean(returns)) if returns else None,
                      "num_episodes": len(returns), **lrs}
            if eval_mode:  # each episode's return, for a spread over episodes (dppo compare)
                record["episode_returns"] = returns
            if spec.suite.frames_per_step:  # camera envs: what rendering costs, in the record and the progress line
                frames = len(ro["rewards"]) * s.n_envs * cfg.act_steps * spec.suite.frames_per_step
                record["frames_per_s"] = frames / max(ro["env_seconds"], 1e-9)
            if success_threshold is not None:
                episodes = finished_episodes(ro["rewards"], ro["first"])
                record.update(success_metrics(episodes, cfg.act_steps, success_threshold))
                if eval_mode:  # each episode's success, in the order of episode_returns
                    record["episode_successes"] = episode_successes(episodes, cfg.act_steps,
                                                                    success_threshold).tolist()
            if not eval_mode:
                set_update_threads(backend)
                with phase("training (unmarked)"):
                    record.update(trainer.train(ro, itr, seed))
            trainer.end_iteration(itr)
            score = d4rl_normalized_score(cfg.env_name, record["avg_episode_reward"] or 0.0)
            if score is not None and returns:
                record["d4rl_score"] = float(score)
            # wall time since the previous record: the iterations log_freq leaves out are counted in the next one
            unrecorded += time.perf_counter() - tic
            if eval_mode or itr % log_freq == 0 or is_checkpoint_iteration(itr, s):
                record["seconds"], unrecorded = unrecorded, 0.0
                with phase("metrics and logging"):
                    run.append_metrics(record)
                    tag = "eval" if eval_mode else "train"
                    scalars = {f"{tag}/{k}": v for k, v in record.items() if isinstance(v, float)}
                    writer.scalars(itr, scalars)
                    wandb.log(itr, scalars)
            if is_checkpoint_iteration(itr, s):
                with phase("checkpoint"):
                    last_saved = _save(run, trainer, venv, obs, done, itr, backend, cfg, env_steps, eval_start)
            shown = {"success": record["success_rate"]} if "success_rate" in record else {}
            if "frames_per_s" in record:
                shown["frames/s"] = record["frames_per_s"]
            progress.update(itr, mode="eval" if eval_mode else "train", reward=record["avg_episode_reward"], **shown)
            iteration_done()
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
            venv.close(terminate=True) if env_failed and (spec.asynchronous or cfg.env.ray or cfg.env.overlap) \
                else venv.close()
    return {"iterations": s.n_train_itr, "last": record, "checkpoint": str(last_saved), "logdir": str(run.root)}


def eval_start_groups(venv: Any, obs: ob.Obs) -> dict[str, Any]:
    """The checkpoint groups that let `dppo eval --as-logged` rerun an evaluation iteration: every env's state
    right after the iteration's reset (physics, the env's reset RNG for the episodes that follow within the
    iteration, time limit, observation history) and the observations the policy saw first (N, To, Do); none
    when an env cannot be snapshotted."""
    env_state = vector_env_state(venv)
    return {} if env_state is None else {"eval_start": ob.to_group(ob.map_obs(np.copy, obs), "obs"),
                                         "eval_start_env": env_state}


def _save(run: RunDir, trainer: Any, venv: Any, obs: ob.Obs, done: np.ndarray, itr: int, backend: str,
          cfg: PolicyRunConfig, env_steps: int, eval_start: dict[str, Any]) -> Path:
    """Checkpoint of iteration itr: the trainer's groups, the envs' last observations, done flags and simulator
    state (for an exact resume), where an evaluation iteration started (eval_start_groups), and the run's
    metadata."""
    groups = {**trainer.state_groups(), **eval_start}
    groups["rollout"] = {**ob.to_group(obs, "obs"), "done": done}
    env_state = vector_env_state(venv)
    if env_state is not None:
        groups["env"] = env_state
    meta = {"framework": backend, "itr": itr, "step": itr, "config": cfg.raw, "kind": "finetune",
            "algorithm": trainer.algorithm, "env_steps": env_steps}
    return run.save_checkpoint(itr, Checkpoint(groups, meta))


def _env_steps_before(ckpt: Checkpoint | None, start: int, s: LoopSettings, act_steps: int) -> int:
    """Env steps of the training iterations before `start`: the checkpoint's count where it has one (an
    iteration's length can vary), else n_steps x n_envs x act_steps per training iteration."""
    if ckpt is not None and "env_steps" in ckpt.meta:
        return int(ckpt.meta["env_steps"])
    return sum(s.n_steps * s.n_envs * act_steps for i in range(start) if not is_eval_iteration(i, s))


def _restore_envs(venv: Any, ckpt: Checkpoint, obs: ob.Obs, s: LoopSettings, seed: int,
                  start: int) -> tuple[ob.Obs, np.ndarray, bool]:
    """(obs, done flags, fresh) to continue from a checkpoint: its simulator state when it has one
    for this many envs; otherwise (an env that is not MuJoCo, an older checkpoint) every env is
    reset, seeded by iteration, and the next iteration starts new episodes."""
    saved = ckpt.groups.get("rollout")
    if saved is not None and "env" in ckpt.groups and len(saved["done"]) == s.n_envs:
        restore_vector_env_state(venv, dict(ckpt.groups["env"]))
        return ob.from_group(saved, "obs"), np.asarray(saved["done"], np.float64), False
    print("checkpoint has no simulator state for these envs: resetting them", file=sys.stderr)
    return venv.reset(seed=[seed + 1000 * start + i for i in range(s.n_envs)])[0], np.ones(s.n_envs), True
