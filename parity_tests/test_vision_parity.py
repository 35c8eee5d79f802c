"""The image-network twins (VisionDiffusionMLP, GaussianVisionMLP, ViTCritic on the ViT backbone): layer-by-layer
forward and every gradient (parameters, proprioception, pixels) on drawn architectures, float32 and float64, from
the family's init moved off its start (N(0, 0.02) ViT weights leave attention near uniform, norms at 1 / 0);
augmented batches identical in both twins from the same numpy shifts; dropout acting in training only."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import torch
from hypothesis import given
from hypothesis import strategies as st

import core_tf.networks.registry as tf_registry
import core_tf.networks.vit as tf_vit
import core_tf.runtime.canonical as tf_io
import core_torch.networks.registry as torch_registry
import core_torch.networks.vit as torch_vit
import core_torch.runtime.canonical as torch_io
from core_tf.runtime.probe import probe as tf_probe
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.report import probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute
from shared.data.random_shifts import SHIFT_PAD, apply_shifts, draw_shifts
from shared.param_spec.families import network_init, network_spec
from shared.param_spec.vit import (
    GaussianVisionMLPConfig,
    VisionDiffusionMLPConfig,
    ViTCriticConfig,
    VitEncoderConfig,
    VitSettings,
)

_EXAMPLES = s.examples(1 / 2, 4)  # a probe traces ~40 layers


def _moved_params(cfg, seed: int) -> dict[str, np.ndarray]:
    """The family's init, every tensor moved by noise of its own scale (log-variances across the clamp range)."""
    rng = np.random.default_rng([seed, 2])
    params = {}
    for name, value in network_init(cfg, seed).items():
        if name == "logvar":
            noise = rng.uniform(np.log(cfg.std_min**2) - 1, np.log(cfg.std_max**2) + 1, value.shape)
            params[name] = noise.astype(np.float32)
            continue
        scale = 1.0 / np.sqrt(np.prod(value.shape[1:])) if value.ndim >= 2 else 0.3
        params[name] = (value + scale * rng.standard_normal(value.shape)).astype(np.float32)
    return params


def _twins(cfg, params):
    th, tf_ = torch_registry.build_network(cfg), tf_registry.build_network(cfg)
    torch_io.load_state(th, params)
    tf_io.load_state(tf_, params)
    th.eval()
    return th, tf_


def _forward(module, cfg, shifts):
    """The network's outputs as one (B, n) tensor in the module's framework, on keyword inputs."""
    torch_side = isinstance(module, torch.nn.Module)

    def flat(out):
        outs = out if isinstance(out, tuple) else (out,)
        if torch_side:
            return torch.cat([o.reshape(o.shape[0], -1) for o in outs], dim=-1)
        return tf.concat([tf.reshape(o, [tf.shape(o)[0], -1]) for o in outs], axis=-1)

    if isinstance(cfg, VisionDiffusionMLPConfig):
        return lambda x, t, state, rgb: flat(module(x, t, state, rgb, shifts=shifts))
    return lambda state, rgb: flat(module(state, rgb, shifts=shifts))


def _inputs(cfg, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    bb = cfg.backbone
    frames = cfg.img_cond_steps + int(rng.integers(0, 2))  # the networks read the most recent img_cond_steps
    inp = {"state": s.bounded_floats(rng, (batch, 1, cfg.cond_dim)),
           "rgb": rng.integers(0, 256, (batch, frames, 3 * cfg.num_img, bb.img_h, bb.img_w)).astype(np.float32)}
    if isinstance(cfg, VisionDiffusionMLPConfig):
        inp["x"] = s.bounded_floats(rng, (batch, cfg.horizon_steps, cfg.action_dim))
        inp["t"] = rng.integers(0, 100, batch).astype(np.int64)
    return inp


def _width(cfg) -> int:
    if isinstance(cfg, VisionDiffusionMLPConfig):
        return cfg.output_dim
    return 2 * cfg.output_dim if isinstance(cfg, GaussianVisionMLPConfig) else 1


@_EXAMPLES
@given(cfg=s.image_network_configs, batch=st.integers(1, 4), seed=s.seeds)
def test_image_network_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    inp = _inputs(cfg, batch, rng)
    shifts = draw_shifts(rng, batch, cfg.num_img) if cfg.augment else None
    cot = s.bounded_floats(rng, (batch, _width(cfg)))
    params = _moved_params(cfg, seed)

    def measure():
        th, tf_ = _twins(cfg, params)
        x, c = in_compute(inp), in_compute({"c": cot})["c"]
        return probe_quantities("vision", torch_probe(th, _forward(th, cfg, shifts), x, c),
                                tf_probe(tf_, _forward(tf_, cfg, shifts), x, c))

    report = twin_report(measure)
    assert_twins_agree(report)
    assert not [r for r in report.rows if "(shape" in r.name]  # the traced layer sets are identical
    assert set(network_spec(cfg)) <= {r.name for r in report.rows if r.section == "vision/grad_param"}
    assert {"state", "rgb"} <= {r.name for r in report.rows if r.section == "vision/grad_input"}
    layers = {r.name for r in report.rows if r.section == "vision/forward"}
    assert {"backbone.vit.patch_embed", "backbone.vit.net.0.mha", "backbone.vit.norm"} <= layers
    assert {name for name in cfg.compress_names} <= layers


@given(batch=st.integers(1, 6), size=st.sampled_from([8, 12, 16]), channels=st.integers(1, 6), seed=s.seeds)
def test_shifted_batches_are_identical_in_both_twins_and_move_by_the_shift(batch, size, channels, seed):
    """The same numpy shifts give bit-identical crops in torch, TF and numpy; an interior pixel moves by exactly
    (dy - pad, dx - pad); the image edges repeat (replicate padding)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch, channels, size, size)).astype(np.float32)
    shifts = draw_shifts(rng, batch)[0]
    th = torch_vit.random_shift(torch.from_numpy(images), shifts).numpy()
    tf_ = tf_vit.random_shift(tf.constant(images), shifts).numpy()
    assert np.array_equal(th, tf_) and np.array_equal(th, apply_shifts(images, shifts))
    for b, (dx, dy) in enumerate(shifts):
        i, j = size // 2, size // 2
        src = (min(max(i + dy - SHIFT_PAD, 0), size - 1), min(max(j + dx - SHIFT_PAD, 0), size - 1))
        assert np.array_equal(th[b, :, i, j], images[b, :, src[0], src[1]])


def test_shifts_come_from_the_generator_and_reach_every_offset():
    a, b = draw_shifts(np.random.default_rng(3), 64, 2), draw_shifts(np.random.default_rng(3), 64, 2)
    assert a.shape == (2, 64, 2) and np.array_equal(a, b)
    assert set(np.unique(a)) == set(range(2 * SHIFT_PAD + 1))


@s.examples(1 / 4, 3)
@given(cfg=s.image_network_configs, seed=s.seeds)
def test_readout_dropout_acts_in_training_only_in_both_twins(cfg, seed):
    """With dropout set, each twin gives exactly its dropout-free output outside training and a different one in
    training (each framework draws its own masks, as every dropout in the project)."""
    dropped = dataclasses.replace(cfg, dropout=0.5)
    params = _moved_params(cfg, seed)
    rng = np.random.default_rng(seed)
    inp = _inputs(cfg, 4, rng)
    shifts = draw_shifts(rng, 4, cfg.num_img) if cfg.augment else None
    (th, tf_), (th_drop, tf_drop) = _twins(cfg, params), _twins(dropped, params)

    def run(module, training: bool) -> np.ndarray:
        if isinstance(module, torch.nn.Module):
            module.train(training)
            with torch.no_grad():
                return _forward(module, cfg, shifts)(**{k: torch.from_numpy(v) for k, v in inp.items()}).numpy()
        fwd = _forward(lambda *a, **k: module(*a, **k, training=training), cfg, shifts)
        return fwd(**{k: tf.constant(v) for k, v in inp.items()}).numpy()

    for plain, drop in ((th, th_drop), (tf_, tf_drop)):
        np.testing.assert_array_equal(run(drop, False), run(plain, False))
        assert not np.array_equal(run(drop, True), run(plain, False))


def test_shifts_on_a_network_without_augment_are_refused():
    backbone = VitEncoderConfig(obs_shape=(3, 16, 16), cfg=VitSettings(embed_dim=4, num_heads=1), img_h=16, img_w=16)
    cfg = ViTCriticConfig(backbone=backbone, cond_dim=2, spatial_emb=3, mlp_dims=(4,))
    th, _ = _twins(cfg, network_init(cfg, 0))
    inp = _inputs(cfg, 2, np.random.default_rng(0))
    fwd = _forward(th, cfg, draw_shifts(np.random.default_rng(0), 2, cfg.num_img))
    try:
        fwd(**{k: torch.from_numpy(v) for k, v in inp.items()})
    except ValueError as exc:
        assert "augment: false" in str(exc)
    else:
        raise AssertionError("shifts were applied to a network without augment")
