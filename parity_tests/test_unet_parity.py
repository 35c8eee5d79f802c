"""Unet1D twins: the convolution layers one by one (TF's channels-last convolutions behind torch's layout), the
whole network layer by layer with every gradient, the samplers' per-chain fast path, and a DiffusionModel read from
a config whose network `_target_` is upstream's Unet1D, sampling on both backends from the same noise."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import core_tf.networks.layers as tf_layers
import core_tf.runtime.canonical as tf_io
import core_torch.runtime.canonical as torch_io
from core_tf.runtime.module import Module
from core_tf.runtime.probe import probe as tf_probe
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.report import probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute, twin_pair
from shared.config.reader import read
from shared.errors import ConfigError
from shared.param_spec import torch_default_init
from shared.param_spec.unet import Unet1DConfig
from shared.settings import DiffusionConfig


class _Holder(Module):
    """One TF layer as the child `layer`, so the probe traces it under the name torch's holder gives it."""

    def __init__(self, layer: Module) -> None:
        super().__init__()
        self.layer = self.add_child("layer", layer)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.layer(x)


def _layer_pair(kind: str, c_in: int, c_out: int, k: int, stride: int, padding: int, groups: int):
    if kind == "conv":
        return nn.Conv1d(c_in, c_out, k, stride, padding), tf_layers.Conv1d(c_in, c_out, k, stride, padding)
    if kind == "conv_transpose":
        return (nn.ConvTranspose1d(c_in, c_out, k, stride, padding),
                tf_layers.ConvTranspose1d(c_in, c_out, k, stride, padding))
    return nn.GroupNorm(groups, c_in, eps=1e-4), tf_layers.GroupNorm(groups, c_in, eps=1e-4)


@given(kind=st.sampled_from(["conv", "conv_transpose", "group_norm"]), c_in=st.sampled_from([1, 2, 4, 6]),
       c_out=st.integers(1, 5), k=st.integers(1, 5), stride=st.integers(1, 3), padding=st.integers(0, 2),
       length=st.integers(1, 9), batch=s.batch_sizes, seed=s.seeds, data=st.data())
def test_conv_and_group_norm_layers_agree_with_torch_nn(kind, c_in, c_out, k, stride, padding, length, batch, seed,
                                                        data):
    """Torch's own Conv1d, ConvTranspose1d and GroupNorm against core_tf/networks/layers.py's, channels first,
    over strides, paddings and lengths (the transposed convolution's padding crops, unlike TF's)."""
    if kind == "conv":
        length = max(length, k - 2 * padding)  # at least one output position
    if kind == "conv_transpose":
        padding = min(padding, (k - 1) // 2)  # torch needs (L - 1) stride - 2 padding + k >= 1 for every L
    groups = data.draw(st.sampled_from([g for g in range(1, c_in + 1) if c_in % g == 0]))
    rng = np.random.default_rng(seed)
    x32 = s.bounded_floats(rng, (batch, c_in, length))

    def measure():
        th_layer, tf_layer = _layer_pair(kind, c_in, c_out, k, stride, padding, groups)
        th, tf_ = nn.Sequential(), _Holder(tf_layer)
        th.add_module("layer", th_layer)
        spec = torch_io.parameter_shapes(th)
        assert {n: tuple(v) for n, v in tf_io.parameter_shapes(tf_).items()} == dict(spec)
        params = {n: (p + 0.3 * np.random.default_rng(seed + 1).standard_normal(p.shape)).astype(np.float32)
                  for n, p in torch_default_init(spec, seed).items()}  # norms off 1 and 0 too
        torch_io.load_state(th, params)
        tf_io.load_state(tf_, params)
        x = in_compute({"x": x32})
        a = torch_probe(th, lambda x: th(x), x)
        b = tf_probe(tf_, lambda x: tf_(x), x)
        return probe_quantities(kind, a, b)

    report = twin_report(measure)
    assert_twins_agree(report)
    assert not [r for r in report.rows if "(shape" in r.name]


# A UNet probe traces ~150 layers per framework: a third of the profile's examples.
_UNET_EXAMPLES = s.examples(1 / 3, 3)


@_UNET_EXAMPLES
@given(cfg=s.unet_configs(), batch=s.batch_sizes, seed=s.seeds, data=st.data())
def test_unet_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed, data):
    horizon = data.draw(s.unet_horizons(cfg))
    rng = np.random.default_rng(seed)
    inputs = {
        "x": s.bounded_floats(rng, (batch, horizon, cfg.action_dim), 3.0),
        "t": rng.integers(0, 100, batch).astype(np.int64),
        "state": s.bounded_floats(rng, (batch, 2, cfg.cond_dim // 2)) if cfg.cond_dim % 2 == 0
        else s.bounded_floats(rng, (batch, 1, cfg.cond_dim)),
    }
    cot = s.bounded_floats(rng, (batch, horizon, cfg.action_dim))

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        x, c = in_compute(inputs), in_compute({"c": cot})["c"]
        return probe_quantities("unet", torch_probe(th, lambda x, t, state: th(x, t, state), x, c),
                                tf_probe(tf_, lambda x, t, state: tf_(x, t, state), x, c))

    report = twin_report(measure)
    assert_twins_agree(report)
    # the traced layer sets are identical and channels-first on both sides, so nothing was silently skipped
    assert not [r for r in report.rows if "(shape" in r.name]
    judged = {r.name for r in report.rows if r.section == "unet/forward"}
    assert {"final_conv", "mid_modules.1", "time_mlp"} <= judged


@_UNET_EXAMPLES
@given(cfg=s.unet_configs(), batch=s.batch_sizes, seed=s.seeds, data=st.data())
def test_denoise_with_per_chain_embeddings_equals_forward_in_both_twins(cfg, batch, seed, data):
    """The samplers' fast path (time embeddings for a chain's steps and the condition computed once, one
    (1, dsed) row broadcast per step) gives the full forward's output in both twins (to float64 rounding), and
    the twins agree on both by the rule."""
    horizon = data.draw(s.unet_horizons(cfg))
    rng = np.random.default_rng(seed)
    x32 = s.bounded_floats(rng, (batch, horizon, cfg.action_dim), 3.0)
    state32 = s.bounded_floats(rng, (batch, 1, cfg.cond_dim))
    steps = rng.permutation(100)[:3].astype(np.int64)

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        x, state = in_compute({"x": x32, "state": state32}).values()
        with torch.no_grad():
            th_embs, th_cond = th.time_embedding(torch.from_numpy(steps)), th.condition(torch.from_numpy(state))
        tf_embs, tf_cond = tf_.time_embedding(tf.constant(steps)), tf_.condition(tf.constant(state))
        assert tuple(th_embs.shape) == tuple(tf_embs.shape) == (len(steps), cfg.diffusion_step_embed_dim)
        q = {}
        for i, t in enumerate(steps):
            full_t = np.full(batch, t, np.int64)
            with torch.no_grad():
                th_full = th(torch.from_numpy(x), torch.from_numpy(full_t), torch.from_numpy(state)).numpy()
                th_fast = th.denoise(torch.from_numpy(x), th_embs[i : i + 1], th_cond).numpy()
            tf_full = tf_(tf.constant(x), tf.constant(full_t), tf.constant(state)).numpy()
            tf_fast = tf_.denoise(tf.constant(x), tf_embs[i : i + 1], tf_cond).numpy()
            if x.dtype == np.float64:  # the two paths differ only in rounding (the time MLP runs on S rows, not
                # B), which GroupNorm over a short, flat group can amplify ~100x: equal to float64 rounding
                scale = max(1.0, float(np.abs(th_full).max()))
                np.testing.assert_allclose(th_fast, th_full, atol=1e-12 * scale, rtol=0)
                np.testing.assert_allclose(tf_fast, tf_full, atol=1e-12 * scale, rtol=0)
            q[("denoise", f"fast path t={t}")] = (th_fast, tf_fast)
            q[("denoise", f"full forward t={t}")] = (th_full, tf_full)
        return q

    assert_twins_agree(twin_report(measure))


def test_a_horizon_the_levels_cannot_halve_is_refused_in_one_line():
    """What a sampler calls (denoise) refuses it in both twins; a config with it is refused when read (below)."""
    cfg = Unet1DConfig(2, 3, 4, 4, (1, 2, 4))
    th, tf_, _ = twin_pair(cfg, 0)
    x, t, state = np.zeros((1, 6, 2), np.float32), np.zeros(1, np.int64), np.zeros((1, 1, 3), np.float32)
    with torch.no_grad():
        th_in = (torch.from_numpy(x), th.time_embedding(torch.from_numpy(t)), th.condition(torch.from_numpy(state)))
    tf_in = (tf.constant(x), tf_.time_embedding(tf.constant(t)), tf_.condition(tf.constant(state)))
    for run in (lambda: th.denoise(*th_in), lambda: tf_.denoise(*tf_in)):
        with pytest.raises(ValueError, match=r"^Unet1D with dim_mults \[1, 2, 4\] needs a horizon that is a "
                                             r"multiple of 4, got 6$"):
            run()


# ------------------------------------------------ a DiffusionModel whose network section names Unet1D

_UNET_SECTION = {"_target_": "model.diffusion.unet.Unet1D", "diffusion_step_embed_dim": 8, "dim": 4,
                 "dim_mults": [1, 2], "kernel_size": 5, "n_groups": 2, "smaller_encoder": False,
                 "cond_predict_scale": True}


def _model_section(horizon: int, **over) -> dict:
    obs_dim, cond_steps, action_dim = 3, 2, 2
    network = {**_UNET_SECTION, "cond_dim": obs_dim * cond_steps, "action_dim": action_dim}
    return {"network": network, "horizon_steps": horizon, "obs_dim": obs_dim, "action_dim": action_dim,
            "cond_steps": cond_steps, "denoising_steps": 4, **over}


_DDPM, _DDIM = dict(use_ddim=False), dict(use_ddim=True, ddim_steps=2)


@pytest.mark.parametrize(("horizon", "sampler", "deterministic"), [  # each case compiles 2 x 2 TF chains
    (4, _DDPM, True), (16, _DDIM, False)], ids=["h4-ddpm-deterministic", "h16-ddim-stochastic"])
def test_a_diffusion_model_read_with_a_unet_target_samples_alike_on_both_backends(horizon, sampler, deterministic):
    """Read from a config (model.network._target_: model.diffusion.unet.Unet1D, upstream's robomimic layout at
    small widths), built by both backends' DiffusionModel through the registry, fed the same canonical weights,
    state and noise: every step of the reverse chain agrees by the parity rule."""
    cfg = read(DiffusionConfig, _model_section(horizon, **sampler), "model")
    assert isinstance(cfg.network, Unet1DConfig)
    batch = 3
    rng = np.random.default_rng(horizon)
    state32 = s.bounded_floats(rng, (batch, cfg.cond_steps, cfg.obs_dim))
    steps = cfg.num_sampling_steps
    noise32 = rng.standard_normal((steps + 1, batch, horizon, cfg.action_dim)).astype(np.float32)

    def measure():
        th, tf_, _ = twin_pair(cfg, 7)
        assert type(th.network).__name__ == type(tf_.network).__name__ == "Unet1D"
        state, noise = in_compute({"state": state32, "noise": noise32}).values()
        with torch.no_grad():
            a = th.sample(torch.from_numpy(state), torch.from_numpy(noise), deterministic, return_chain=True)
        b = tf_.sample(state, noise, deterministic, return_chain=True)
        q = {("chain", f"x[{i}]"): (a.chains[:, i].numpy(), b.chains.numpy()[:, i]) for i in range(steps + 1)}
        q[("chain", "final")] = (a.trajectories.numpy(), b.trajectories.numpy())
        return q

    report = twin_report(measure)
    assert_twins_agree(report)


def test_a_diffusion_model_with_a_horizon_its_unet_cannot_halve_is_refused_in_one_line():
    section = _model_section(6)
    section["network"]["dim_mults"] = [1, 2, 4]
    with pytest.raises(ConfigError, match=r"^config key 'model\.horizon_steps' must be a multiple of 4 for a "
                                          r"Unet1D with 3 levels \(dim_mults \[1, 2, 4\]\), got 6$"):
        read(DiffusionConfig, section, "model")
