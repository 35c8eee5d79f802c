"""`dppo export`: a checkpoint of either framework -> a SavedModel in TF Serving's layout
(DIR/<version>/saved_model.pb + variables/). Torch and TF checkpoints go through the
canonical format, so both export the same graph."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dppo.checkpoints.formats import read_checkpoint
from shared.config.loading import locate_data_file
from shared.data.dataset import Normalization, load_normalization
from shared.errors import CheckpointError, ConfigError
from shared.serving import PolicyShape
from shared.settings import (
    EvalConfig,
    FinetuneConfig,
    GaussianPretrainConfig,
    GMMFinetuneConfig,
    GMMPretrainConfig,
    PretrainConfig,
    algorithm_of,
    read_config,
)
from shared.temp_dirs import make_temp_dir


@dataclass(frozen=True)
class PolicyToExport:
    """What every runtime's export reads from a checkpoint, checked once: the config, what it serves
    ("policy": one diffusion policy; "dppo": a DPPO fine-tuning run's base actor and actor_ft), the
    weights, the served shapes and the normalization baked into the graph."""

    path: str
    cfg: Any
    serving: str
    diffusion: Any  # DiffusionConfig of the served policy
    weights: dict  # canonical weights of the served networks
    schedule: dict | None  # a DPPO run's dppo_schedule group (annealed K, std floor), else None
    min_std: float  # exploration std floor of the stochastic chain (serving == "policy")
    shape: PolicyShape
    norm: Normalization


def read_policy(ckpt_path: str, normalization_path: str | None = None, act_steps: int | None = None
                ) -> PolicyToExport:
    ckpt = read_checkpoint(ckpt_path)
    if not ckpt.config:
        raise CheckpointError(f"{ckpt_path} carries no config; export needs the model's architecture")
    cfg = read_config(ckpt.config)
    if isinstance(cfg, GaussianPretrainConfig) or (not isinstance(cfg, PretrainConfig) and not cfg.is_diffusion):
        kind = "GMM" if isinstance(cfg, (GMMPretrainConfig, GMMFinetuneConfig)) else "Gaussian"
        raise CheckpointError(f"{ckpt_path} holds a {kind} policy; export serves diffusion policies")
    norm_path = normalization_path or cfg.normalization_path
    if not norm_path:
        raise ConfigError("export needs the dataset's normalization file: the checkpoint's config has no "
                          "normalization_path; pass --normalization")
    # what a fine-tuning checkpoint serves is its algorithm's entry's say (shared/settings/algorithms.py)
    serving = "policy" if isinstance(cfg, (PretrainConfig, EvalConfig)) else algorithm_of(cfg).serving
    if serving is None:
        entry = algorithm_of(cfg)
        raise CheckpointError(f"{ckpt_path} is an {entry.title} run: {entry.serving_refusal}")
    if serving == "policy":
        # one diffusion policy: a pre-training checkpoint's EMA weights, as upstream; the baselines' without critics
        regression = not isinstance(cfg, (PretrainConfig, EvalConfig))
        dc = cfg.diffusion if regression else cfg.model
        weights = ckpt.group("ema" if "ema" in ckpt.groups else "model")
        weights = {k: v for k, v in weights.items() if k.startswith("network.")}
        min_std = cfg.model.min_sampling_denoising_std if regression else 0.1
        schedule = None
    else:  # "dppo": a DPPO fine-tuning checkpoint: base actor for early steps, actor_ft for the last K
        assert isinstance(cfg, FinetuneConfig)
        dc, weights, min_std = cfg.diffusion, dict(ckpt.group("model")), 0.0
        schedule = ckpt.groups.get("dppo_schedule")
    steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps
    act = int(act_steps or getattr(cfg, "act_steps", None) or dc.horizon_steps)
    if not 1 <= act <= dc.horizon_steps:
        raise ConfigError(f"act_steps={act} must be in [1, horizon_steps={dc.horizon_steps}]")
    shape = PolicyShape(dc.cond_steps, dc.obs_dim, dc.horizon_steps, dc.action_dim, act, steps)
    norm = load_normalization(locate_data_file(norm_path), dc.obs_dim, dc.action_dim)
    return PolicyToExport(str(ckpt_path), cfg, serving, dc, weights, schedule, min_std, shape, norm)


def build_serving_policy(ckpt_path: str, normalization_path: str | None = None, act_steps: int | None = None,
                         xla: bool = True, max_bucket: int | None = None) -> Any:
    """The TF ServingPolicy of a checkpoint; max_bucket: the largest batch the XLA chain is compiled for
    (default core_tf.runtime.export.MAX_BUCKET)."""
    import core_tf.runtime.canonical as tf_io
    from core_tf.runtime.export import MAX_BUCKET, ServingPolicy

    p = read_policy(ckpt_path, normalization_path, act_steps)
    if p.serving == "policy":
        from core_tf.diffusion.model import DiffusionModel

        policy = DiffusionModel(p.diffusion)
        tf_io.load_state(policy, p.weights, p.path)
        plans = {True: policy.plan(True), False: policy.plan(False, p.min_std)}

        def sampler(state: Any, noise: Any, deterministic: bool) -> Any:
            return policy._chain(state, noise, plans[deterministic])[0]
    else:
        from core_tf.algorithms.ppo_diffusion import PPODiffusionModel

        policy = PPODiffusionModel(p.diffusion, p.cfg.critic, p.cfg.dppo)
        tf_io.load_state(policy, p.weights, p.path)
        policy.check_fixed_eta()
        if p.schedule is not None:
            policy.load_schedule_state(p.schedule)

        def sampler(state: Any, noise: Any, deterministic: bool) -> Any:
            return policy.sample(state, noise, deterministic)[0]

    return ServingPolicy(sampler, p.norm, p.shape, policy, xla, max_bucket or MAX_BUCKET), p.shape


def warm_up(loaded: Any, saved_model_dir: str | os.PathLike) -> int:
    """Replay the SavedModel's warm-up file (one request per signature and batch bucket) on a loaded
    model, so every bucket is compiled before a caller's first request; the number of requests replayed."""
    import tensorflow as tf

    from core_tf.runtime.serving_warmup import read_warmup_requests

    requests = read_warmup_requests(saved_model_dir)
    for signature, inputs in requests:
        loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return len(requests)


def load_saved_model(saved_model_dir: str | os.PathLike, warm: bool = True) -> Any:
    """tf.saved_model.load, then (warm) the warm-up replay TF Serving does at load: in Python too, no request
    then waits for an XLA compile (1.3-4 s per new batch size otherwise)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    if warm:
        warm_up(loaded, saved_model_dir)
    return loaded


def check_saved_model(saved_model_dir: Path, ckpt_path: str, num_states: int = 16, seed: int = 0) -> float:
    """Relative difference of serving_default between the exported SavedModel and the in-memory model,
    on raw states drawn across the normalization range."""
    import numpy as np
    import tensorflow as tf

    from shared.tolerances import relative_diff

    serving, shape = build_serving_policy(ckpt_path)
    lo, hi = serving.obs_min.numpy(), serving.obs_max.numpy()
    rng = np.random.default_rng(seed)
    state = (lo + rng.uniform(0, 1, (num_states, shape.cond_steps, shape.obs_dim)) * (hi - lo)).astype(np.float32)
    served = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"](state=tf.constant(state))
    in_memory = serving.serve(tf.constant(state))
    return relative_diff(served["action"].numpy(), in_memory["action"].numpy())


def next_version(out: Path) -> int:
    versions = [int(p.name) for p in out.iterdir() if p.name.isdigit()] if out.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(ckpt_path: str, out_dir: str, version: int | None = None,
                       normalization_path: str | None = None, act_steps: int | None = None, xla: bool = True) -> Path:
    """Write out_dir/<version>/ atomically; an existing version is never overwritten."""
    out = Path(out_dir)
    version = version if version is not None else next_version(out)
    target = out / str(version)
    if target.exists():
        raise ConfigError(f"{target} already exists; TF Serving versions are immutable, pick another --version")
    serving, _ = build_serving_policy(ckpt_path, normalization_path, act_steps, xla)
    out.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out, f".{version}.")
    try:
        serving.save(str(tmp))
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
