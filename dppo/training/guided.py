"""`dppo guide`: train, sample and evaluate a reward-guided conditional diffusion model (the "Diffusion
Policy Engine" note), with either backend.

Every random number is drawn here in numpy, keyed by (seed, epoch, stream, batch): the data, the batch
order, each batch's timesteps and noise, and each validation's contexts, initial samples, step noise and
MPPI jitter. Given the same config the torch and TF backends therefore train on the same numbers and
differ by float rounding only (parity_tests/test_guided_parity.py).

Per epoch e (1-based) of E: lambda = reward_weight(e - 1, E, ...) (0 during the warm-up, then a linear
ramp), one AdamW step per batch of `loss = mse(eps_hat, eps) - lambda mean R(x, p0_hat)`, then the
validation reward: the mean R of parameters sampled for `validation_size` fresh contexts, with MPPI as
configured (`val_reward`) and without it from the same draws (`val_reward_plain`); `reward` is the training
batches' mean R(x, p0_hat), the term the loss subtracts.
"""

from __future__ import annotations

import math
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from dppo.checkpoints.formats import read_checkpoint
from dppo.runs.files import RunDir, writing
from dppo.runs.lock import LogdirLock
from dppo.runs.progress import Progress
from dppo.runs.stop import close_all, with_kept_checkpoint
from dppo.runs.tensorboard import ScalarWriter
from shared.algorithms.offpolicy import minibatch_noise, minibatch_timesteps
from shared.checkpoint import Checkpoint, check_strict
from shared.errors import CheckpointError, RunTerminated, TrainingDivergedError, UserError, WriteFailedError
from shared.guided import rosenbrock
from shared.guided.chain import guided_chain
from shared.guided.reward_weight import reward_weight
from shared.param_spec import cond_denoiser_spec, torch_default_init
from shared.settings.guided import GuidedConfig

# draw streams of one batch / one validation
TIMESTEPS, NOISE = 0, 1
INITIAL, STEP_NOISE, JITTER = 2, 3, 4
ORDER = 35


def initial_params(cfg: GuidedConfig) -> OrderedDict:
    """The denoiser's weights as torch.nn.Linear initialises them, from cfg.seed."""
    return torch_default_init(cond_denoiser_spec(cfg.model.denoiser()), cfg.seed)


def make_agent(cfg: GuidedConfig, backend: str, params: OrderedDict) -> Any:
    """The backend's RewardGuidedAgent on `params`, its reward built for that backend's tensors."""
    if backend == "torch":
        import torch

        from core_torch.algorithms import reward_guided as core

        xp: Any = torch
    elif backend == "tf":
        import tensorflow as tf

        from core_tf.algorithms import reward_guided as core

        xp = tf
    else:
        raise UserError(f"unknown backend {backend!r}; choose torch or tf")
    if cfg.black_box_reward:
        reward = core.host_reward(lambda x, p: rosenbrock.reward(x, p, np))
    else:
        reward = lambda x, p: rosenbrock.reward(x, p, xp)  # noqa: E731
    return core.RewardGuidedAgent(cfg.model.denoiser(), guided_chain(cfg.model.denoising_steps), cfg.train,
                                  cfg.sample, params, reward, differentiable=not cfg.black_box_reward)


def batch_order(seed: int, epoch: int, n: int, batch_size: int) -> np.ndarray:
    """(n // batch_size, batch_size) row indices: a fresh permutation each epoch, the remainder dropped."""
    rows = np.random.default_rng([seed, epoch, ORDER]).permutation(n)
    return rows[: n // batch_size * batch_size].reshape(-1, batch_size)


def sampling_draws(cfg: GuidedConfig, seed: int, key: int, n: int) -> dict[str, np.ndarray]:
    """Initial samples (n, Dp), step noise (T, n, Dp) and MPPI jitter (T, K, n, Dp) for draw `key`."""
    T, dp, k = cfg.model.denoising_steps, cfg.model.param_dim, cfg.sample.mppi_candidates
    return {"p_init": minibatch_noise(seed, key, INITIAL, 0, (n, dp)),
            "step_noise": minibatch_noise(seed, key, STEP_NOISE, 0, (T, n, dp)),
            "jitter": minibatch_noise(seed, key, JITTER, 0, (T, k, n, dp))}


def sample(agent: Any, cfg: GuidedConfig, x: np.ndarray, draws: dict[str, np.ndarray], mppi: bool) -> np.ndarray:
    return agent.sample(x, draws["p_init"], draws["step_noise"], draws["jitter"] if mppi else None)


def finite_rewards(values: np.ndarray, what: str) -> np.ndarray:
    """values, or a TrainingDivergedError naming `what` when any is NaN or infinite."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise TrainingDivergedError(f"the reward returned {int(bad.sum())} non-finite value(s) of {values.size} "
                                    f"({what}); a reward must be a finite number for every (x, p)")
    return values


def validate(agent: Any, cfg: GuidedConfig, seed: int, epoch: int) -> dict[str, float]:
    """Mean reward of parameters sampled for validation_size fresh contexts: with MPPI when the config
    samples with it (`val_reward`) and without it from the same draws (`val_reward_plain`)."""
    x = rosenbrock.validation_contexts(seed, epoch, cfg.sample.validation_size)
    draws = sampling_draws(cfg, seed, 100_000 + epoch, len(x))

    def mean_reward(mppi: bool) -> float:
        p = sample(agent, cfg, x, draws, mppi)
        return float(np.mean(finite_rewards(agent.reward_of(x, p), f"validation after epoch {epoch}")))

    configured = mean_reward(cfg.sample.mppi)
    return {"val_reward": configured, "val_reward_plain": mean_reward(False) if cfg.sample.mppi else configured}


def run_train(cfg: GuidedConfig, backend: str, quiet: bool = False) -> dict[str, Any]:
    """Train (or resume from the logdir's latest checkpoint) per cfg, holding the logdir's lock."""
    with LogdirLock(cfg.logdir):
        return _run_train(cfg, backend, quiet)


def _resume_point(run: RunDir) -> tuple[Checkpoint | None, Path | None, int]:
    path = run.latest_checkpoint()
    if path is None:
        return None, None, 0
    ckpt = read_checkpoint(path)
    if ckpt.meta.get("kind") != "guided" or "optimizer" not in ckpt.groups:
        raise CheckpointError(f"{path} is not a reward-guided training checkpoint; use another logdir")
    return ckpt, path, int(ckpt.meta["epoch"])


def _run_train(cfg: GuidedConfig, backend: str, quiet: bool) -> dict[str, Any]:
    train, seed = cfg.train, cfg.seed
    x_all, p_all = rosenbrock.dataset(cfg.data.size, seed, cfg.data.noise_std)
    run = RunDir(cfg.logdir)
    run.remove_stale_temp_files()
    ckpt, last_saved, done = _resume_point(run)
    agent = make_agent(cfg, backend, initial_params(cfg))
    if ckpt is not None:
        check_strict(cond_denoiser_spec(cfg.model.denoiser()), ckpt.group("model"), "model")
        agent.load_groups(ckpt.groups)
        print(f"resumed from {last_saved} (epoch {done})", file=sys.stderr)
    run.truncate_metrics("epoch", done if ckpt is not None else None)
    run.write_config(cfg.raw)
    T = cfg.model.denoising_steps
    writer = ScalarWriter(run.root / "tensorboard", backend)
    progress = Progress(train.epochs, done, "epoch", quiet, f"guide train [{backend}]")
    record: dict[str, float] = {}
    try:
        for epoch in range(done + 1, train.epochs + 1):
            tic = time.perf_counter()
            lam = reward_weight(epoch - 1, train.epochs, train.reward_weight, train.warmup_fraction,
                                train.ramp_fraction)
            logs: dict[str, list[float]] = {}
            for b, rows in enumerate(batch_order(seed, epoch, len(x_all), train.batch_size)):
                t = minibatch_timesteps(seed, epoch, TIMESTEPS, b, len(rows), T)
                noise = minibatch_noise(seed, epoch, NOISE, b, (len(rows), cfg.model.param_dim))
                step = agent.train_step(x_all[rows], p_all[rows], t, noise, lam)
                if not all(math.isfinite(v) for v in step.values()):
                    kept = f"last checkpoint {last_saved} left untouched" if last_saved else "no checkpoint yet"
                    raise TrainingDivergedError(f"non-finite loss or reward ({step}) at epoch {epoch}, batch {b}; "
                                                f"training stopped, {kept}")
                for k, v in step.items():
                    logs.setdefault(k, []).append(v)
            record = {"epoch": epoch, "lambda": lam, **validate(agent, cfg, seed, epoch),
                      **{k: float(np.mean(v)) for k, v in logs.items()}, "seconds": time.perf_counter() - tic}
            run.append_metrics(record)
            writer.scalars(epoch, {f"guided/{k}": v for k, v in record.items() if k != "epoch"})
            meta = {"framework": backend, "epoch": epoch, "step": epoch, "config": cfg.raw, "kind": "guided"}
            last_saved = run.save_checkpoint(epoch, Checkpoint(agent.state_groups(), meta))
            progress.update(epoch, val_reward=record["val_reward"], loss=record["loss"])
        with writing(run.root / "reward_curve.png"):
            plot_validation(run.read_metrics(), rosenbrock.reference_levels(seed, cfg.data.size, cfg.data.noise_std),
                            run.root / "reward_curve.png", f"{backend}, seed {seed}")
    except (WriteFailedError, RunTerminated) as exc:
        raise with_kept_checkpoint(exc, last_saved) from None
    finally:
        progress.close()
        close_all(writer)
    records = run.read_metrics()
    final = records[-1] if records else record
    return {"epochs": train.epochs, "val_reward": final.get("val_reward"),
            "val_reward_plain": final.get("val_reward_plain"),
            "checkpoint": str(last_saved), "logdir": str(run.root)}


def plot_validation(records: list[dict[str, Any]], levels: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in records]
    ax.plot(epochs, [r["val_reward"] for r in records], "o-", label="validation reward (as configured)")
    ax.plot(epochs, [r["val_reward_plain"] for r in records], "s--", label="without MPPI")
    for name, style in (("data", ":"), ("optimum", "-.")):
        ax.axhline(levels[name], color="gray", linestyle=style, label=f"{name} level {levels[name]:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean tanh(-cost / 5)")
    ax.set_title(f"reward-guided diffusion, {title}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_trained(cfg: GuidedConfig, backend: str, checkpoint: str | None) -> tuple[Any, str]:
    """The agent on a checkpoint's weights (default: the logdir's latest), either backend's."""
    path = checkpoint or RunDir(cfg.logdir).latest_checkpoint()
    if path is None:
        raise CheckpointError(f"no checkpoint in {cfg.logdir}/checkpoint; train first or pass --checkpoint")
    ckpt = read_checkpoint(path)
    model = ckpt.group("model")
    check_strict(cond_denoiser_spec(cfg.model.denoiser()), model, "model")
    return make_agent(cfg, backend, model), str(path)


def parse_contexts(text: str, dim: int) -> np.ndarray:
    """'x1,x2;x1,x2;...' -> (n, dim) float32, or a UserError naming what is wrong."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in text.split(";") if row.strip()]
    except ValueError:
        raise UserError(f"--contexts {text!r}: write numbers as 'a,b;c,d' (rows separated by ';')") from None
    if not rows or any(len(r) != dim for r in rows):
        raise UserError(f"--contexts {text!r}: every context needs {dim} numbers")
    x = np.asarray(rows, np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"--contexts {text!r}: contexts must be finite")
    return x


def run_sample(cfg: GuidedConfig, backend: str, checkpoint: str | None, x: np.ndarray, seed: int,
               mppi: bool) -> dict[str, Any]:
    """Parameters sampled for contexts x and their rewards."""
    agent, path = load_trained(cfg, backend, checkpoint)
    p = sample(agent, cfg, x, sampling_draws(cfg, seed, 200_000, len(x)), mppi)
    return {"checkpoint": path, "x": x, "p": p, "reward": finite_rewards(agent.reward_of(x, p), "sampled"),
            "optimum": rosenbrock.optimum(x.astype(np.float64))}


def run_eval(cfg: GuidedConfig, backend: str, checkpoint: str | None, n: int, seed: int) -> dict[str, Any]:
    """Mean reward over n fresh contexts with and without MPPI, beside the benchmark's reference levels."""
    agent, path = load_trained(cfg, backend, checkpoint)
    x = rosenbrock.validation_contexts(seed, 300_000, n)
    draws = sampling_draws(cfg, seed, 300_000, n)
    out: dict[str, Any] = {"checkpoint": path, "contexts": n}
    for name, mppi in (("mppi", True), ("plain", False)):
        r = finite_rewards(agent.reward_of(x, sample(agent, cfg, x, draws, mppi)), f"eval ({name})")
        out[name] = {"mean": float(r.mean()), "stderr": float(r.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0}
    out["levels"] = rosenbrock.reference_levels(seed, cfg.data.size, cfg.data.noise_std)
    return out
