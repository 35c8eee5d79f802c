"""Gaussian_Transformer and GMM_Transformer twins: layer-by-layer forward and every gradient on drawn
architectures, from one canonical initialisation moved off its trivial start (N(0, 0.02) weights leave attention
near uniform, LayerNorms at 1 / 0, which would hide their math); dropout sites present in both twins."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import torch
from hypothesis import given

import core_tf.networks.transformer as tf_tr
import core_tf.runtime.canonical as tf_io
import core_torch.networks.transformer as torch_tr
import core_torch.runtime.canonical as torch_io
from core_tf.runtime.probe import probe as tf_probe
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.report import probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute
from shared.param_spec.transformer import (
    GaussianTransformerConfig,
    GMMTransformerConfig,
    gaussian_transformer_spec,
    gmm_transformer_spec,
    transformer_init,
)


def _moved_params(cfg: GaussianTransformerConfig | GMMTransformerConfig, seed: int) -> dict[str, np.ndarray]:
    """The canonical init, every tensor moved by noise of its own scale (log-variances across the clamp range)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, value in transformer_init(cfg, seed).items():
        if name == "logvar":
            noise = rng.uniform(np.log(cfg.std_min**2) - 1, np.log(cfg.std_max**2) + 1, value.shape)
            params[name] = noise.astype(np.float32)
            continue
        scale = 1.0 / np.sqrt(value.shape[-1]) if value.ndim == 2 else 0.3
        params[name] = (value + scale * rng.standard_normal(value.shape)).astype(np.float32)
    return params


def _cls(cfg: GaussianTransformerConfig | GMMTransformerConfig) -> str:
    return "GaussianTransformer" if isinstance(cfg, GaussianTransformerConfig) else "GMMTransformer"


def _twins(cfg, params):
    th, tf_ = getattr(torch_tr, _cls(cfg)).from_config(cfg), getattr(tf_tr, _cls(cfg)).from_config(cfg)
    torch_io.load_state(th, params)
    tf_io.load_state(tf_, params)
    th.eval()
    return th, tf_


def _flat(module):
    """The policy's outputs as one (B, n) tensor in the module's framework (means, stds[, logits])."""
    if isinstance(module, torch.nn.Module):
        return lambda state: torch.cat([o.reshape(o.shape[0], -1) for o in module(state)], dim=-1)
    return lambda state: tf.concat([tf.reshape(o, [tf.shape(o)[0], -1]) for o in module(state)], axis=-1)


@given(cfg=s.transformer_configs, batch=s.batch_sizes, seed=s.seeds)
def test_transformer_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    to = int(rng.integers(1, 3)) if cfg.cond_dim % 2 == 0 else 1
    state = s.bounded_floats(rng, (batch, to, cfg.cond_dim // to))
    modes = cfg.num_modes if isinstance(cfg, GMMTransformerConfig) else 1
    width = 2 * modes * cfg.output_dim + (modes if isinstance(cfg, GMMTransformerConfig) else 0)
    cot = s.bounded_floats(rng, (batch, width))
    params = _moved_params(cfg, seed)

    def measure():
        th, tf_ = _twins(cfg, params)
        x = in_compute({"state": state})
        c = in_compute({"c": cot})["c"]
        return probe_quantities("transformer", torch_probe(th, _flat(th), x, c), tf_probe(tf_, _flat(tf_), x, c))

    report = twin_report(measure)
    assert_twins_agree(report)
    assert not [r for r in report.rows if "(shape" in r.name]  # the traced layer sets are identical
    judged = {r.name for r in report.rows if r.section == "transformer/grad_param"}
    spec = gaussian_transformer_spec(cfg) if isinstance(cfg, GaussianTransformerConfig) else gmm_transformer_spec(cfg)
    assert set(spec) <= judged  # every parameter's gradient is compared
    layers = {r.name for r in report.rows if r.section == "transformer/forward"}
    assert {"transformer.decoder.layers.0.self_attn", "transformer.decoder.layers.0.multihead_attn",
            "transformer.encoder", "transformer.ln_f", "transformer.head"} <= layers


@given(cfg=s.transformer_configs, seed=s.seeds)
def test_dropout_acts_in_training_only_in_both_twins(cfg, seed):
    """With p_drop_emb and p_drop_attn set, each twin gives exactly its dropout-free output outside training and a
    different one in training (each framework draws its own masks: test_dropout_parity compares them in law)."""
    dropped = dataclasses.replace(cfg, p_drop_emb=0.3, p_drop_attn=0.3)
    params = _moved_params(cfg, seed)
    state = s.bounded_floats(np.random.default_rng(seed), (4, 1, cfg.cond_dim))
    (th, tf_), (th_drop, tf_drop) = _twins(cfg, params), _twins(dropped, params)

    def run(module, training: bool) -> np.ndarray:
        if isinstance(module, torch.nn.Module):
            module.train(training)
            with torch.no_grad():
                return torch.cat([o.reshape(4, -1) for o in module(torch.from_numpy(state))], -1).numpy()
        return tf.concat([tf.reshape(o, [4, -1]) for o in module(tf.constant(state), training=training)], -1).numpy()

    for plain, drop in ((th, th_drop), (tf_, tf_drop)):
        np.testing.assert_array_equal(run(drop, False), run(plain, False))
        assert not np.array_equal(run(drop, True), run(plain, False))
