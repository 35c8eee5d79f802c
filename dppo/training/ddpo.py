"""`dppo ddpo pretrain|train`: pre-train the class-conditional digit denoiser, then fine-tune it with DDPO
(SF, IS, ISKL) or reward-weighted regression (RWR, sparse RWR), with either backend.

Every random number is drawn here in numpy, keyed by (seed, epoch or iteration, stream, minibatch): the
pre-training batch order, label dropout, timesteps and noise; each iteration's prompts and chain noise,
its minibatch rows and (RWR) timesteps and noise; the fixed evaluation prompts and noise. Given the same
config and starting weights the torch and TF backends see the same numbers and differ by float rounding
only (parity_tests/test_ddpo_parity.py), and a resumed run repeats an uninterrupted one.

Fine-tuning iteration k (1-based) of K: sample N chains (DDIM, eta 1, guidance w) for N uniform prompts,
score the final images with the reward, normalize per prompt (shared/ddpo/normalize.py), then U AdamW
steps on minibatches of min(batch_size, N) rows drawn without replacement. Metrics per iteration: the
samples' mean reward (`reward`, against `samples` = k N), how often the classifier reads the prompted digit
(`accuracy`), the loss terms; every eval_every iterations the same on fixed prompts and noise
(`eval_reward`, `eval_accuracy`).
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
from dppo.runs.stop import with_kept_checkpoint
from shared.algorithms.offpolicy import minibatch_noise, minibatch_timesteps, minibatch_uniform
from shared.checkpoint import Checkpoint, check_strict
from shared.ddpo import digits
from shared.ddpo.chain import DDPOChain, ddpo_chain
from shared.ddpo.normalize import PromptStats, rwr_weights, sparse_weights
from shared.ddpo.rewards import REWARDS, prompt_accuracy
from shared.errors import CheckpointError, RunTerminated, TrainingDivergedError, UserError, WriteFailedError
from shared.param_spec import cond_denoiser_spec, torch_default_init
from shared.settings.ddpo import DDPOConfig, DDPOModelConfig, DDPOPretrainConfig

# draw streams
ORDER, DROPOUT, TIMESTEPS, NOISE = 0, 1, 2, 3
PROMPTS, CHAIN_NOISE = 4, 5
EVAL_KEY = 1_000_000


def initial_params(model: DDPOModelConfig, seed: int) -> OrderedDict:
    """The denoiser's weights as torch.nn.Linear initialises them, from seed."""
    return torch_default_init(cond_denoiser_spec(model.denoiser()), seed)


def _core(backend: str) -> Any:
    if backend == "torch":
        from core_torch.algorithms import ddpo as core
    elif backend == "tf":
        from core_tf.algorithms import ddpo as core
    else:
        raise UserError(f"unknown backend {backend!r}; choose torch or tf")
    return core


def chain_of(model: DDPOModelConfig, sample: Any = None) -> DDPOChain:
    """The chain tables; pre-training only reads the training tables (the sampling part at the defaults)."""
    if sample is None:
        return ddpo_chain(model.denoising_steps, min(50, model.denoising_steps), 1.0, 0.01)
    return ddpo_chain(model.denoising_steps, sample.ddim_steps, sample.eta, sample.min_std)


def make_pretrainer(cfg: DDPOPretrainConfig, backend: str, params: OrderedDict) -> Any:
    return _core(backend).DDPOPretrainer(cfg.model.denoiser(), chain_of(cfg.model), cfg.pretrain, params)


def make_agent(cfg: DDPOConfig, backend: str, params: OrderedDict, ref_params: OrderedDict | None = None) -> Any:
    return _core(backend).DDPOAgent(cfg.model.denoiser(), chain_of(cfg.model, cfg.sample), cfg.sample, cfg.train,
                                    cfg.algorithm, params, ref_params)


# ---------------------------------------------------------------- pre-training
def cosine_lr(step: int, total: int, peak: float) -> float:
    """peak at step 0, cosine decay to peak / 10 at step `total`."""
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1))))


def pretrain_batch(cfg: DDPOPretrainConfig, epoch: int, b: int, rows: np.ndarray, x: np.ndarray, y: np.ndarray
                   ) -> dict[str, np.ndarray]:
    """Batch b of epoch: images, labels (null with probability label_dropout), timesteps, noise."""
    seed, n = cfg.seed, len(rows)
    drop = minibatch_uniform(seed, epoch, DROPOUT, b, (n,)) < cfg.pretrain.label_dropout
    return {"x0": x[rows], "labels": np.where(drop, digits.NULL_CLASS, y[rows]).astype(np.int64),
            "t": minibatch_timesteps(seed, epoch, TIMESTEPS, b, n, cfg.model.denoising_steps),
            "noise": minibatch_noise(seed, epoch, NOISE, b, (n, digits.PIXELS))}


def batch_order(seed: int, epoch: int, n: int, batch_size: int) -> np.ndarray:
    rows = np.random.default_rng([seed, epoch, ORDER, 43]).permutation(n)
    return rows[: n // batch_size * batch_size].reshape(-1, batch_size)


def _resume(run: RunDir, kind: str, counter: str) -> tuple[Checkpoint | None, Path | None, int]:
    path = run.latest_checkpoint()
    if path is None:
        return None, None, 0
    ckpt = read_checkpoint(path)
    if ckpt.meta.get("kind") != kind or "optimizer" not in ckpt.groups:
        raise CheckpointError(f"{path} is not a {kind} checkpoint; use another logdir")
    return ckpt, path, int(ckpt.meta[counter])


def run_pretrain(cfg: DDPOPretrainConfig, backend: str, quiet: bool = False) -> dict[str, Any]:
    with LogdirLock(cfg.logdir):
        return _run_pretrain(cfg, backend, quiet)


def _run_pretrain(cfg: DDPOPretrainConfig, backend: str, quiet: bool) -> dict[str, Any]:
    p, seed = cfg.pretrain, cfg.seed
    x, y = digits.digits()
    if p.batch_size > len(x):
        raise UserError(f"pretrain.batch_size={p.batch_size} is larger than the {len(x)} digits")
    run = RunDir(cfg.logdir)
    run.remove_stale_temp_files()
    ckpt, last_saved, done = _resume(run, "ddpo_pretrain", "epoch")
    trainer = make_pretrainer(cfg, backend, initial_params(cfg.model, seed))
    if ckpt is not None:
        trainer.load_groups(ckpt.groups)
        print(f"resumed from {last_saved} (epoch {done})", file=sys.stderr)
    run.truncate_metrics("epoch", done if ckpt is not None else None)
    run.write_config(cfg.raw)
    steps_per_epoch = len(x) // p.batch_size
    total = p.epochs * steps_per_epoch
    progress = Progress(p.epochs, done, "epoch", quiet, f"ddpo pretrain [{backend}]")
    try:
        for epoch in range(done + 1, p.epochs + 1):
            tic = time.perf_counter()
            losses = []
            for b, rows in enumerate(batch_order(seed, epoch, len(x), p.batch_size)):
                lr = cosine_lr((epoch - 1) * steps_per_epoch + b, total, p.learning_rate)
                out = trainer.train_step(**pretrain_batch(cfg, epoch, b, rows, x, y), lr=lr)
                if not math.isfinite(out["loss"]):
                    raise TrainingDivergedError(f"non-finite loss at epoch {epoch}, batch {b}; training stopped")
                losses.append(out["loss"])
            record = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": lr, "seconds": time.perf_counter() - tic}
            run.append_metrics(record)
            if epoch % p.checkpoint_every == 0 or epoch == p.epochs:
                meta = {"framework": backend, "epoch": epoch, "step": epoch, "config": cfg.raw, "kind": "ddpo_pretrain"}
                last_saved = run.save_checkpoint(epoch, Checkpoint(trainer.state_groups(), meta))
            progress.update(epoch, loss=record["loss"])
    except (WriteFailedError, RunTerminated) as exc:
        raise with_kept_checkpoint(exc, last_saved) from None
    finally:
        progress.close()
    return {"epochs": p.epochs, "loss": run.read_metrics()[-1]["loss"], "checkpoint": str(last_saved),
            "logdir": str(run.root)}


# ---------------------------------------------------------------- fine-tuning
def load_base(base: str, model: DDPOModelConfig) -> OrderedDict:
    """The pre-trained EMA weights of `base`: a pretrain logdir (its latest checkpoint) or a checkpoint file."""
    path: Path | None = Path(base)
    if path is not None and path.is_dir():
        path = RunDir(base).latest_checkpoint()
    if path is None or not path.exists():
        raise CheckpointError(f"no pre-trained model at base={base}; run `dppo ddpo pretrain --config "
                              "configs/ddpo/pretrain_digits.yaml` first or point base at its logdir")
    ckpt = read_checkpoint(path)
    weights = ckpt.group("ema") if "ema" in ckpt.groups else ckpt.group("model")
    check_strict(cond_denoiser_spec(model.denoiser()), weights, "base model")
    return weights


def iteration_draws(cfg: DDPOConfig, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Iteration k's prompts (N,) and chain noise (S+1, N, 64)."""
    n, s = cfg.train.samples_per_iteration, cfg.sample.ddim_steps
    return (digits.prompts(cfg.seed, k, PROMPTS, n),
            minibatch_noise(cfg.seed, k, CHAIN_NOISE, 0, (s + 1, n, digits.PIXELS)))


def eval_draws(cfg: DDPOConfig) -> tuple[np.ndarray, np.ndarray]:
    """The fixed evaluation prompts (each digit in turn) and noise, the same at every evaluation."""
    n = cfg.sample.eval_samples
    return (np.arange(n, dtype=np.int64) % digits.NUM_CLASSES,
            minibatch_noise(cfg.seed, EVAL_KEY, CHAIN_NOISE, 0, (cfg.sample.ddim_steps + 1, n, digits.PIXELS)))


def finite_rewards(values: np.ndarray, what: str) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        raise TrainingDivergedError(f"the reward returned {int(bad.sum())} non-finite value(s) of {values.size} "
                                    f"({what}); a reward must be a finite number for every image")
    return values


def minibatches(cfg: DDPOConfig, k: int, samples: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The U minibatches of iteration k: rows without replacement, and what the algorithm's loss reads."""
    n, mb, alg = cfg.train.samples_per_iteration, cfg.minibatch, cfg.algorithm
    out = []
    for u in range(cfg.train.updates_per_iteration):
        rows = np.random.default_rng([cfg.seed, k, ORDER, u, 44]).permutation(n)[:mb]
        b = {"labels": samples["labels"][rows]}
        if alg in ("rwr", "sparse_rwr"):
            b.update(x0=samples["chains"][rows, -1], weights=samples["weights"][rows],
                     t=minibatch_timesteps(cfg.seed, k, TIMESTEPS, u, mb, cfg.model.denoising_steps),
                     noise=minibatch_noise(cfg.seed, k, NOISE, u, (mb, digits.PIXELS)))
        else:
            b.update(chains=samples["chains"][rows], advantages=samples["advantages"][rows])
            if alg != "sf":
                b["old_logprobs"] = samples["logprobs"][rows]
        out.append(b)
    return out


def collect(agent: Any, cfg: DDPOConfig, k: int, stats: PromptStats) -> dict[str, np.ndarray]:
    """Iteration k's chains, log-probabilities, rewards, normalized rewards and RWR weights."""
    labels, noise = iteration_draws(cfg, k)
    out = agent.sample(labels, noise)
    x0 = out["chains"][:, -1]
    rewards = finite_rewards(REWARDS[cfg.reward](x0, labels), f"iteration {k}")
    adv = stats.normalize(rewards, labels)
    weights = (rwr_weights(adv, labels, cfg.train.rwr_beta) if cfg.algorithm == "rwr"
               else sparse_weights(adv, cfg.train.sparse_threshold))
    return {**out, "labels": labels, "rewards": rewards, "advantages": adv, "weights": weights,
            "accuracy": prompt_accuracy(x0, labels)}


def evaluate(agent: Any, cfg: DDPOConfig) -> dict[str, Any]:
    labels, noise = eval_draws(cfg)
    x0 = agent.sample(labels, noise)["chains"][:, -1]
    rewards = finite_rewards(REWARDS[cfg.reward](x0, labels), "evaluation")
    return {"eval_reward": float(rewards.mean()), "eval_accuracy": float(prompt_accuracy(x0, labels).mean()),
            "images": x0, "labels": labels}


def save_grid(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.grid(images, labels)).save(path)


def run_train(cfg: DDPOConfig, backend: str, quiet: bool = False) -> dict[str, Any]:
    with LogdirLock(cfg.logdir):
        return _run_train(cfg, backend, quiet)


def _run_train(cfg: DDPOConfig, backend: str, quiet: bool) -> dict[str, Any]:
    t = cfg.train
    base = load_base(cfg.base, cfg.model)
    run = RunDir(cfg.logdir)
    run.remove_stale_temp_files()
    ckpt, last_saved, done = _resume(run, "ddpo", "iteration")
    agent = make_agent(cfg, backend, base, base)
    stats = PromptStats(digits.NUM_CLASSES, t.stat_buffer, t.stat_min_count)
    if ckpt is not None:
        check_strict(cond_denoiser_spec(cfg.model.denoiser()), ckpt.group("model"), "model")
        agent.load_groups(ckpt.groups)
        stats.load_state(ckpt.group("stats"))
        print(f"resumed from {last_saved} (iteration {done})", file=sys.stderr)
    run.truncate_metrics("iteration", done if ckpt is not None else None)
    run.write_config(cfg.raw)
    if ckpt is None:
        ev = evaluate(agent, cfg)
        save_grid(run.root / "samples_before.png", ev["images"], ev["labels"])
        run.append_metrics({"iteration": 0, "samples": 0, "eval_reward": ev["eval_reward"],
                            "eval_accuracy": ev["eval_accuracy"]})
    progress = Progress(t.iterations, done, "iteration", quiet, f"ddpo {cfg.algorithm} [{backend}]")
    record: dict[str, Any] = {}
    try:
        for k in range(done + 1, t.iterations + 1):
            tic = time.perf_counter()
            samples = collect(agent, cfg, k, stats)
            logs: dict[str, list[float]] = {}
            for u, batch in enumerate(minibatches(cfg, k, samples)):
                step = agent.train_step(batch)
                if not all(math.isfinite(v) for v in step.values()):
                    kept = f"last checkpoint {last_saved} left untouched" if last_saved else "no checkpoint yet"
                    raise TrainingDivergedError(f"non-finite loss ({step}) at iteration {k}, update {u}; training "
                                                f"stopped, {kept}")
                for name, v in step.items():
                    logs.setdefault(name, []).append(v)
            record = {"iteration": k, "samples": k * t.samples_per_iteration,
                      "reward": float(samples["rewards"].mean()), "reward_std": float(samples["rewards"].std()),
                      "accuracy": float(samples["accuracy"].mean()),
                      **{name: float(np.mean(v)) for name, v in logs.items()}}
            last = k == t.iterations
            if k % t.eval_every == 0 or last:
                ev = evaluate(agent, cfg)
                record.update(eval_reward=ev["eval_reward"], eval_accuracy=ev["eval_accuracy"])
                if last:
                    save_grid(run.root / "samples_after.png", ev["images"], ev["labels"])
            record["seconds"] = time.perf_counter() - tic
            run.append_metrics(record)
            if k % t.checkpoint_every == 0 or last:
                meta = {"framework": backend, "iteration": k, "step": k, "config": cfg.raw, "kind": "ddpo"}
                groups = {**agent.state_groups(), "stats": stats.state()}
                last_saved = run.save_checkpoint(k, Checkpoint(groups, meta))
            progress.update(k, reward=record["reward"], accuracy=record["accuracy"])
    except (WriteFailedError, RunTerminated) as exc:
        raise with_kept_checkpoint(exc, last_saved) from None
    finally:
        progress.close()
    final = run.read_metrics()[-1]
    return {"iterations": t.iterations, "reward": final.get("reward"), "eval_reward": final.get("eval_reward"),
            "eval_accuracy": final.get("eval_accuracy"), "checkpoint": str(last_saved), "logdir": str(run.root)}
