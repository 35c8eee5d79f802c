"""`dppo export`: a checkpoint of either framework -> a SavedModel in TF Serving's layout
(DIR/<version>/saved_model.pb + variables/). Torch and TF checkpoints go through the
canonical format, so both export the same graph. Diffusion policies (any denoiser family: MLP, UNet, the
image diffusion MLP), Gaussian and GMM policies (MLP, transformer, the image Gaussian MLP) of pre-training and
fine-tuning runs; what each kind serves is in shared/serving.py and core_tf/runtime/export.py (an image policy
takes the camera frames beside the state)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dppo.checkpoints.formats import read_checkpoint
from shared.checkpoint import check_strict
from shared.config.loading import locate_data_file
from shared.data.dataset import Normalization, load_normalization
from shared.errors import CheckpointError, ConfigError
from shared.param_spec.families import family_of, network_spec
from shared.param_spec.vit import IMAGE_NETWORK_CONFIGS
from shared.serving import ImageShape, PolicyShape
from shared.settings import (
    EvalConfig,
    FinetuneConfig,
    GaussianPretrainConfig,
    PretrainConfig,
    algorithm_of,
    read_config,
)
from shared.temp_dirs import make_temp_dir


@dataclass(frozen=True)
class PolicyToExport:
    """What every runtime's export reads from a checkpoint, checked once: the config, what it serves
    ("policy": one diffusion policy; "dppo": a DPPO fine-tuning run's base actor and actor_ft; "network": a
    Gaussian or GMM policy's network), the weights, the served shapes and the normalization baked into the graph.
    shape.kind says which sampler runs them (shared/serving.py)."""

    path: str
    cfg: Any
    serving: str
    diffusion: Any  # DiffusionConfig of a served diffusion policy, else None
    network: Any  # the network config of a served Gaussian or GMM policy, else None
    weights: dict  # canonical weights of the served networks (a Gaussian or GMM network's without prefix)
    schedule: dict | None  # a DPPO run's dppo_schedule group (annealed K, std floor), else None
    min_std: float  # exploration std floor of the stochastic chain (serving == "policy")
    randn_clip_value: float | None  # a Gaussian policy's noise clip (upstream's randn_clip_value); else None
    shape: PolicyShape
    norm: Normalization


def _network_weights(group: dict, prefix: str, network: Any, what: str) -> dict:
    """The tensors of `group` under `prefix`, without it, checked against the network's spec (one line naming
    the first missing, unexpected or misshaped tensor)."""
    weights = {k[len(prefix):]: v for k, v in group.items() if k.startswith(prefix)}
    check_strict(network_spec(network), weights, what)
    return weights


def _gaussian_or_gmm(ckpt: Any, cfg: Any, ckpt_path: str) -> tuple[Any, dict, float | None]:
    """(network config, its weights, noise clip) of a Gaussian or GMM policy: a pre-training checkpoint's
    `model` network.* (what upstream's GaussianModel and GMMModel load, as `dppo eval` does), a PPO run's actor.*
    (upstream's actor_ft)."""
    # Gaussian PPO's actor or PPO_GMM's; a GMM policy's sampling clips nothing (upstream's GMMModel)
    network = cfg.model.network if isinstance(cfg, (GaussianPretrainConfig, EvalConfig)) else cfg.gaussian_actor
    clip = getattr(cfg.model, "randn_clip_value", None)
    group = ckpt.group("model")
    prefix = "actor." if any(k.startswith("actor.") for k in group) else "network."
    return network, _network_weights(group, prefix, network, f"{ckpt_path}: the policy network"), clip


def image_shape(network: Any) -> ImageShape | None:
    """The camera frames a policy network reads (its config), or None for a state-only network."""
    if not isinstance(network, IMAGE_NETWORK_CONFIGS):
        return None
    return ImageShape(network.img_cond_steps, network.num_img, network.backbone.img_h, network.backbone.img_w)


def read_policy(ckpt_path: str, normalization_path: str | None = None, act_steps: int | None = None
                ) -> PolicyToExport:
    ckpt = read_checkpoint(ckpt_path)
    if not ckpt.config:
        raise CheckpointError(f"{ckpt_path} carries no config; export needs the model's architecture")
    cfg = read_config(ckpt.config)
    norm_path = normalization_path or cfg.normalization_path
    if not norm_path:
        raise ConfigError("export needs the dataset's normalization file: the checkpoint's config has no "
                          "normalization_path; pass --normalization")
    # what a fine-tuning checkpoint serves is its algorithm's entry's say (shared/settings/algorithms.py)
    if isinstance(cfg, (PretrainConfig, GaussianPretrainConfig, EvalConfig)):
        diffusion = isinstance(cfg, PretrainConfig) or (isinstance(cfg, EvalConfig) and cfg.is_diffusion)
        serving = "policy" if diffusion else "network"
    else:
        entry = algorithm_of(cfg)
        if entry.serving is None:
            raise CheckpointError(f"{ckpt_path} is an {entry.title} run: {entry.serving_refusal}")
        serving = entry.serving if cfg.is_diffusion else "network"  # Gaussian PPO shares DPPO's entry
    network, clip, schedule, min_std = None, None, None, 0.0
    if serving == "network":
        network, weights, clip = _gaussian_or_gmm(ckpt, cfg, ckpt_path)
        dc = None
        kind, steps = family_of(network).role, 0
        horizon, obs_dim, action_dim, cond_steps = network.horizon_steps, cfg.obs_dim, network.action_dim, \
            cfg.cond_steps
    else:
        if serving == "policy":
            # one diffusion policy: a pre-training checkpoint's EMA weights, as upstream; the baselines' without critics
            regression = not isinstance(cfg, (PretrainConfig, EvalConfig))
            dc = cfg.diffusion if regression else cfg.model
            weights = ckpt.group("ema" if "ema" in ckpt.groups else "model")
            weights = {k: v for k, v in weights.items() if k.startswith("network.")}
            min_std = cfg.model.min_sampling_denoising_std if regression else 0.1
        else:  # "dppo": a DPPO fine-tuning checkpoint: base actor for early steps, actor_ft for the last K
            assert isinstance(cfg, FinetuneConfig)
            dc, weights = cfg.diffusion, dict(ckpt.group("model"))
            schedule = ckpt.groups.get("dppo_schedule")
        kind, steps = "diffusion", dc.ddim_steps if dc.use_ddim else dc.denoising_steps
        horizon, obs_dim, action_dim, cond_steps = dc.horizon_steps, dc.obs_dim, dc.action_dim, dc.cond_steps
    act = int(act_steps or getattr(cfg, "act_steps", None) or horizon)
    if not 1 <= act <= horizon:
        raise ConfigError(f"act_steps={act} must be in [1, horizon_steps={horizon}]")
    image = image_shape(network if network is not None else dc.network)
    shape = PolicyShape(cond_steps, obs_dim, horizon, action_dim, act, steps, kind, image)
    norm = load_normalization(locate_data_file(norm_path), obs_dim, action_dim)
    return PolicyToExport(str(ckpt_path), cfg, serving, dc, network, weights, schedule, min_std, clip, shape, norm)


def _tf_diffusion(p: PolicyToExport) -> tuple[Any, Callable]:
    """A diffusion policy's sampler: the reverse chain (a DPPO run's base actor and actor_ft) on the noise."""
    import tensorflow as tf

    import core_tf.runtime.canonical as tf_io

    if p.serving == "policy":
        from core_tf.diffusion.model import DiffusionModel

        policy = DiffusionModel(p.diffusion)
        tf_io.load_state(policy, p.weights, p.path)
        plans = {True: policy.plan(True), False: policy.plan(False, p.min_std)}

        def chain(obs: Any, noise: Any, deterministic: bool) -> Any:
            return policy._chain(obs, noise, plans[deterministic])[0]
    else:
        from core_tf.algorithms.ppo_diffusion import PPODiffusionModel

        policy = PPODiffusionModel(p.diffusion, p.cfg.critic, p.cfg.dppo)
        tf_io.load_state(policy, p.weights, p.path)
        policy.check_fixed_eta()
        if p.schedule is not None:
            policy.load_schedule_state(p.schedule)

        def chain(obs: Any, noise: Any, deterministic: bool) -> Any:
            return policy.sample(obs, noise, deterministic)[0]

    def sampler(obs: Any, inputs: tuple, deterministic: bool) -> Any:  # obs: state, or (state, rgb)
        return chain(obs, tf.transpose(inputs[0], [1, 0, 2, 3]), deterministic)  # the twins take (S+1, B, Ta, Da)

    return policy, sampler


def _tf_network(p: PolicyToExport) -> Any:
    import core_tf.runtime.canonical as tf_io
    from core_tf.networks.registry import build_network

    network = build_network(p.network)
    tf_io.load_state(network, p.weights, p.path)
    return network


def _tf_gaussian(p: PolicyToExport) -> tuple[Any, Callable]:
    """A Gaussian policy's sampler: its mean, or mean + std * clip(noise) (upstream GaussianModel)."""
    import tensorflow as tf

    from core_tf.networks.inputs import cond_inputs

    network, c = _tf_network(p), p.randn_clip_value

    def sampler(obs: Any, inputs: tuple, deterministic: bool) -> Any:
        mean, std = network(*cond_inputs(obs))  # (B, Ta * Da) each; obs: state, or (state, rgb)
        x = mean if deterministic else mean + std * tf.clip_by_value(tf.reshape(inputs[0], tf.shape(mean)), -c, c)
        return tf.reshape(x, [-1, p.shape.horizon_steps, p.shape.action_dim])

    return network, sampler


def _tf_gmm(p: PolicyToExport) -> tuple[Any, Callable]:
    """A GMM policy's sampler: its likeliest mode's mean, or the mode mode_uniform picks plus its std * noise."""
    import tensorflow as tf

    from core_tf.algorithms.gmm import likeliest_mean, sample_mixture
    from core_tf.networks.inputs import cond_inputs

    network = _tf_network(p)

    def sampler(obs: Any, inputs: tuple, deterministic: bool) -> Any:
        means, stds, logits = network(*cond_inputs(obs))  # (B, M, Ta * Da), (B, M, Ta * Da), (B, M)
        if deterministic:
            x = likeliest_mean(means, logits)
        else:
            eps = tf.reshape(inputs[0], [tf.shape(means)[0], -1])
            x = sample_mixture(means, stds, logits, eps, inputs[1], deterministic=False)
        return tf.reshape(x, [-1, p.shape.horizon_steps, p.shape.action_dim])

    return network, sampler


# policy kind (shared/serving.py) -> (its TF module holding the weights, its sampler)
TF_SAMPLERS: dict[str, Callable[[PolicyToExport], tuple[Any, Callable]]] = {
    "diffusion": _tf_diffusion, "gaussian": _tf_gaussian, "gmm": _tf_gmm}


def build_serving_policy(ckpt_path: str, normalization_path: str | None = None, act_steps: int | None = None,
                         xla: bool = True, max_bucket: int | None = None) -> Any:
    """(The TF ServingPolicy of a checkpoint, its PolicyShape); max_bucket: the largest batch the XLA sampler is
    compiled for (default core_tf.runtime.export.MAX_BUCKET)."""
    from core_tf.runtime.export import MAX_BUCKET, ServingPolicy

    p = read_policy(ckpt_path, normalization_path, act_steps)
    owner, sampler = TF_SAMPLERS[p.shape.kind](p)
    return ServingPolicy(sampler, p.norm, p.shape, owner, xla, max_bucket or MAX_BUCKET), p.shape


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
    on raw states drawn across the normalization range (and an image policy's frames: uniform pixels)."""
    import numpy as np
    import tensorflow as tf

    from shared.tolerances import relative_diff

    serving, shape = build_serving_policy(ckpt_path)
    lo, hi = serving.obs_min.numpy(), serving.obs_max.numpy()
    rng = np.random.default_rng(seed)
    state = (lo + rng.uniform(0, 1, (num_states, shape.cond_steps, shape.obs_dim)) * (hi - lo)).astype(np.float32)
    obs = {"state": state}
    if shape.image is not None:
        rgb = shape.image.rgb_input
        obs["rgb"] = rng.integers(0, 256, (num_states, *rgb.trailing), dtype=np.uint8)
    served = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in obs.items()})
    in_memory = serving.serve(*(tf.constant(v) for v in obs.values()))  # state [, rgb]: the signature's order
    return relative_diff(served["action"].numpy(), in_memory["action"].numpy())


def next_version(out: Path) -> int:
    versions = [int(p.name) for p in out.iterdir() if p.name.isdigit()] if out.is_dir() else []
    return max(versions, default=0) + 1


def export_saved_model(ckpt_path: str, out_dir: str, version: int | None = None,
                       normalization_path: str | None = None, act_steps: int | None = None, xla: bool = True,
                       max_bucket: int | None = None) -> Path:
    """Write out_dir/<version>/ atomically; an existing version is never overwritten. max_bucket: the largest
    batch the XLA sampler is compiled for (a power of two; default MAX_BUCKET); larger batches run in chunks."""
    out = Path(out_dir)
    version = version if version is not None else next_version(out)
    target = out / str(version)
    if target.exists():
        raise ConfigError(f"{target} already exists; TF Serving versions are immutable, pick another --version")
    if max_bucket is not None and (max_bucket < 1 or max_bucket & (max_bucket - 1)):
        raise ConfigError(f"--max-bucket must be a power of two (1, 2, 4, ...), got {max_bucket}")
    serving, _ = build_serving_policy(ckpt_path, normalization_path, act_steps, xla, max_bucket)
    out.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out, f".{version}.")
    try:
        serving.save(str(tmp))
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
