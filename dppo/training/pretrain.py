"""Pre-training driver shared by both backends and both policy kinds (diffusion, Gaussian): data, epochs,
EMA, logging, checkpoints, resume.

Given the same config, seed and data, the torch and TF backends see the same batches,
timesteps and noise (all drawn in numpy, keyed by seed/epoch/batch) and the same
initial parameters, so they produce the same numbers. A Gaussian policy's step takes the
batch alone (upstream GaussianModel.loss draws nothing).
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
from dppo.runs.files import RunDir
from dppo.runs.lock import LogdirLock
from dppo.runs.progress import Progress
from dppo.runs.stop import close_all, with_kept_checkpoint
from dppo.runs.tensorboard import ScalarWriter
from dppo.runs.wandb import WandbLogger
from shared.checkpoint import Checkpoint
from shared.config.loading import locate_data_file
from shared.data import observations as ob
from shared.data.dataset import EpochSampler, gather_batch, load_dppo_dataset, stitched_indices, training_draws
from shared.data.random_shifts import draw_shifts, shift_frames
from shared.data.robomimic_image_demos import ensure_image_dataset
from shared.errors import CheckpointError, RunTerminated, TrainingDivergedError, UserError, WriteFailedError
from shared.framework_seeds import framework_seed
from shared.param_spec.families import network_init
from shared.settings import GaussianPretrainConfig, GMMPretrainConfig, PretrainConfig
from shared.settings.pretrain import ImageDims, episodes_used, image_dims

AnyPretrainConfig = PretrainConfig | GaussianPretrainConfig  # GMMPretrainConfig is a GaussianPretrainConfig


def make_backend(name: str, gaussian: bool = False, gmm: bool = False, **kwargs: Any) -> Any:
    """The backend's PretrainBackend (diffusion), GaussianPretrainBackend or GMMPretrainBackend built from kwargs."""
    if name not in ("torch", "tf"):
        raise UserError(f"unknown backend {name!r}; choose torch or tf")
    if name == "torch":
        from core_torch.algorithms import pretrain
    else:
        from core_tf.algorithms import pretrain
    if gmm:
        return pretrain.GMMPretrainBackend(**kwargs)
    return (pretrain.GaussianPretrainBackend if gaussian else pretrain.PretrainBackend)(**kwargs)


def initial_params(cfg: AnyPretrainConfig) -> OrderedDict:
    """Canonical `network.*` parameters a pre-training run starts from (the network family's init, seeded: torch's
    defaults unless upstream initialises the family its own way); a learned fixed std starts at
    log(fixed_std ** 2), as upstream's."""
    if isinstance(cfg, PretrainConfig):
        return network_init(cfg.model.network, cfg.seed, "network.")
    net = cfg.model.network
    overrides = {"network.logvar": math.log(net.fixed_std**2)} if net.learn_fixed_std else None
    return network_init(net, cfg.seed, "network.", overrides)


def augmented(obs: ob.Obs, images: ImageDims | None, seed: int, epoch: int, b: int) -> ob.Obs:
    """A batch's observation as an augmenting image network reads it: each camera's frames shifted by shifts
    drawn in numpy keyed by seed/epoch/batch (draw_shifts; the crop the twins' `random_shift` makes, done once
    here on the uint8 frames), so both backends train on the same pixels. Anything else is returned as it is."""
    if images is None or not images.augment:
        return obs
    shifts = draw_shifts(np.random.default_rng([seed, epoch, b, 6]), ob.batch_len(obs), images.num_img)
    return {"state": obs["state"], "rgb": shift_frames(obs["rgb"], shifts)}


def step_inputs(cfg: AnyPretrainConfig, epoch: int, b: int, actions: np.ndarray,
                states: ob.Obs) -> tuple[Any, ...]:
    """What one train step takes for batch b of an epoch: actions (B, Ta, Da) and states (B, To, Do) (an image
    network's {"state", "rgb"}, shifted when it augments), and for a diffusion policy its timesteps (B,) and
    noise (B, Ta, Da), drawn in numpy keyed by seed/epoch/batch."""
    states = augmented(states, image_dims(cfg), cfg.seed, epoch, b)
    if isinstance(cfg, GaussianPretrainConfig):
        return actions, states
    dc = cfg.model
    t, noise = training_draws(cfg.seed, epoch, b, len(actions), dc.horizon_steps, dc.action_dim, dc.denoising_steps)
    return actions, states, t, noise


def run_pretrain(cfg: AnyPretrainConfig, backend: str, quiet: bool = False) -> dict[str, Any]:
    """Train (or resume) per cfg, holding the logdir's lock; returns a summary. Raises UserError
    subclasses on bad input, RunTerminated on SIGTERM."""
    with LogdirLock(cfg.logdir):
        return _run_pretrain(cfg, backend, quiet)


def _resume_point(cfg: AnyPretrainConfig, run: RunDir) -> tuple[Checkpoint | None, Path | str | None, int]:
    """(checkpoint, its path, epochs it has done): resume=PATH, else the logdir's latest; None, 0 without one."""
    resume_from = cfg.resume or run.latest_checkpoint()
    if not resume_from:
        return None, None, 0
    ckpt = read_checkpoint(resume_from)
    done = int(ckpt.meta.get("epoch", -1))
    if done < 0:
        raise CheckpointError(f"{resume_from} has no epoch in its metadata; cannot resume from it")
    missing = [g for g in ("model", "ema") if g not in ckpt.groups]
    if missing:
        raise CheckpointError(f"{resume_from} has no '{missing[0]}' tensors; cannot resume pre-training from it")
    if "optimizer" not in ckpt.groups and not cfg.resume_fresh_optimizer:
        raise CheckpointError(f"{resume_from} has no optimizer state (weights only); add resume_fresh_optimizer=true "
                              "to continue from its weights with a fresh optimizer")
    return ckpt, resume_from, done


def _run_pretrain(cfg: AnyPretrainConfig, backend: str, quiet: bool) -> dict[str, Any]:
    dims, train, seed = cfg.dims, cfg.train, cfg.seed
    gaussian = isinstance(cfg, GaussianPretrainConfig)
    data_path = ensure_image_dataset(locate_data_file(cfg.train_dataset_path))  # made on first use when it is one
    images = image_dims(cfg)
    data = load_dppo_dataset(data_path, dims.obs_dim, dims.action_dim, dims.horizon_steps,
                             episodes_used(cfg.train_dataset, train.max_n_episodes),
                             None if images is None else images.frame_shape)
    img_steps = 1 if images is None else images.img_cond_steps
    indices = stitched_indices(data.traj_lengths, dims.horizon_steps)
    sampler = EpochSampler(len(indices), train.batch_size, seed)
    run = RunDir(cfg.logdir)
    run.remove_stale_temp_files()
    ckpt, resume_from, done = _resume_point(cfg, run)
    model = make_backend(
        backend, gaussian, isinstance(cfg, GMMPretrainConfig), config=cfg.model, init_params=initial_params(cfg),
        learning_rate=train.learning_rate, weight_decay=train.weight_decay,
        schedule=train.lr_scheduler.schedule(train.learning_rate), steps_per_epoch=len(sampler),
        max_grad_norm=train.max_grad_norm, num_epochs=train.n_epochs,
        **({"ent_coef": train.ent_coef} if gaussian else {}))
    if ckpt is not None:
        model.load_groups(ckpt.groups, done)
        fresh = "" if "optimizer" in ckpt.groups else " with a fresh optimizer"
        print(f"resumed from {resume_from} (epoch {done}){fresh}", file=sys.stderr)
    run.truncate_metrics("epoch", done if ckpt is not None else None)  # no checkpoint: start clean
    run.write_config(cfg.raw)
    start = done + 1

    writer = ScalarWriter(run.root / "tensorboard", backend)
    wandb = WandbLogger(cfg.wandb, cfg.raw)
    progress = Progress(train.n_epochs, start - 1, "epoch", quiet, f"pretrain [{backend}]")
    last_saved = resume_from
    loss = float("nan")
    try:
        for epoch in range(start, train.n_epochs + 1):
            tic = time.perf_counter()
            lr = model.lr
            model.seed_rng(framework_seed(seed, epoch))
            losses, extras = [], []
            for b, rows in enumerate(sampler.batches(epoch)):
                actions, states = gather_batch(data, indices[rows], dims.horizon_steps, dims.cond_steps, img_steps)
                step_loss = model.train_step(*step_inputs(cfg, epoch, b, actions, states))
                if not math.isfinite(step_loss):
                    kept = f"last good checkpoint {last_saved} left untouched" if last_saved else "no checkpoint yet"
                    raise TrainingDivergedError(
                        f"non-finite loss ({step_loss}) at epoch {epoch}, batch {b}; training stopped, {kept}")
                losses.append(step_loss)
                extras.append(model.step_metrics())
            model.end_epoch()
            if epoch % train.update_ema_freq == 0:
                if epoch < train.epoch_start_ema:
                    model.ema_reset()
                else:
                    model.ema_update(cfg.ema.decay)
            loss = float(np.mean(losses))
            extra = {k: float(np.mean([e[k] for e in extras])) for k in extras[0]}  # Gaussian: entropy
            seconds = time.perf_counter() - tic
            run.append_metrics({"epoch": epoch, "loss": loss, **extra, "lr": lr, "seconds": seconds})
            writer.scalars(epoch, {"loss/train": loss, **{f"{k}/train": v for k, v in extra.items()}, "lr": lr})
            wandb.log(epoch, {"loss - train": loss, **{f"{k} - train": v for k, v in extra.items()}, "lr": lr})
            if epoch % train.save_model_freq == 0 or epoch == train.n_epochs:
                meta = {"framework": backend, "epoch": epoch, "step": epoch, "config": cfg.raw, "kind": "pretrain"}
                last_saved = run.save_checkpoint(epoch, Checkpoint(model.state_groups(), meta))
            progress.update(epoch, loss=loss, lr=lr)
    except (WriteFailedError, RunTerminated) as exc:
        raise with_kept_checkpoint(exc, last_saved) from None
    finally:
        progress.close()
        close_all(writer, wandb)
    return {"epochs": train.n_epochs, "final_loss": loss, "checkpoint": str(last_saved), "logdir": str(run.root)}
