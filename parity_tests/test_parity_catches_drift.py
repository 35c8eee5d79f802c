"""The gate is not vacuous: a one-line drift in either twin fails it, naming the check.

A drift of the math shows in float64 (the twins rule); a drift that only changes one twin's float32
arithmetic (a reduced-precision matmul) shows in the float32 rounding row."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

import core_tf.diffusion.model as tf_diffusion
import core_tf.networks.activations as tf_acts
import core_torch.diffusion.model as torch_diffusion
from dppo.parity.engine import run_parity
from parity_tests.gate import assert_twins_agree, assert_twins_disagree
from shared.settings import load_settings

CONFIG = "configs/hopper/pretrain_diffusion_mlp.yaml"
# a small network and a short chain: every gate run below compiles the chain in both precisions
SMALL = ["model.network.mlp_dims=[32,32,32]", "denoising_steps=5"]


@pytest.fixture(scope="module")
def small_cfg():
    return load_settings(CONFIG, SMALL)


def test_unmodified_twins_pass(small_cfg):
    assert_twins_agree(run_parity(small_cfg, batch=4))


@pytest.mark.deliberate_drift
def test_changed_activation_in_tf_twin_fails(small_cfg, monkeypatch):
    monkeypatch.setitem(tf_acts._FUNCTIONS, "ReLU", tf.nn.elu)
    failures = assert_twins_disagree(run_parity(small_cfg, batch=4))
    assert any(r.section == "network/forward" for r in failures)


@pytest.mark.deliberate_drift
def test_changed_constant_in_tf_twin_fails(small_cfg, monkeypatch):
    original = tf_diffusion.DiffusionModel.reverse_mean

    def drifted(self, x, net_out, coefs):
        return original(self, x, net_out, {**coefs, "mean_xt": coefs["mean_xt"] * 1.001})

    monkeypatch.setattr(tf_diffusion.DiffusionModel, "reverse_mean", drifted)
    failures = assert_twins_disagree(run_parity(small_cfg, batch=4))
    assert {r.section for r in failures} == {"sampler"}


@pytest.mark.deliberate_drift
def test_flipped_sign_in_torch_twin_fails(small_cfg, monkeypatch):
    def drifted(self, x0, t, noise):
        a = self.sqrt_alphas_cumprod[t][:, None, None]
        s = self.sqrt_one_minus_alphas_cumprod[t][:, None, None]
        return a * x0 - s * noise

    monkeypatch.setattr(torch_diffusion.DiffusionModel, "q_sample", drifted)
    failures = assert_twins_disagree(run_parity(small_cfg, batch=4))
    assert any(r.section.startswith("loss") for r in failures)


@pytest.mark.deliberate_drift
def test_changed_time_embedding_in_torch_twin_fails(small_cfg, monkeypatch):
    import core_torch.networks.embeddings as emb

    monkeypatch.setattr(emb.SinusoidalPosEmb, "forward",
                        lambda self, t: torch.cat([(t.float()[:, None] * self.freqs).cos(),
                                                   (t.float()[:, None] * self.freqs).sin()], -1))
    report = run_parity(small_cfg, batch=4)
    failures = assert_twins_disagree(report)
    assert any(r.name == "network.time_embedding.0" or r.name == "time_embedding.0" for r in failures)
    assert np.isfinite([r.value for r in report.rows]).all()


@pytest.mark.deliberate_drift
def test_one_weight_scaled_by_one_thousandth_in_tf_twin_fails(small_cfg, monkeypatch):
    import core_tf.runtime.canonical as tf_io

    original = tf_io.load_state

    def drifted(module, state, what="model"):
        original(module, state, what)
        for name, v in module.named_parameters():
            if name.endswith("mlp_mean.layers.0.weight"):
                v.assign(v * 1.001)

    monkeypatch.setattr(tf_io, "load_state", drifted)
    failures = assert_twins_disagree(run_parity(small_cfg, batch=4))
    assert any(r.section == "network/forward" and "mlp_mean" in r.name for r in failures)


@pytest.mark.deliberate_drift
def test_reduced_precision_matmul_in_tf_twin_fails_the_rounding_check(small_cfg, monkeypatch):
    """bfloat16 matmuls in float32 only (what TF32 / mixed precision would do): the float64 math is
    unchanged, so only the float32 rounding row can see it. The operands and the product are rounded
    to bfloat16 by casts around a float32 matmul (a bfloat16 kernel's arithmetic, without calling one:
    TF's oneDNN bfloat16 matmul crashes the process under ONEDNN_MAX_CPU_ISA=AVX2 on a CPU with
    AVX512_BF16)."""
    from core_tf.networks import layers

    def bf16(a):
        return tf.cast(tf.cast(a, tf.bfloat16), tf.float32)

    def bf16_call(self, x):
        if x.dtype != tf.float32:
            return tf.matmul(x, self.weight, transpose_b=True) + self.bias
        return bf16(tf.matmul(bf16(x), bf16(self.weight), transpose_b=True)) + self.bias

    monkeypatch.setattr(layers.Linear, "call", bf16_call)
    failures = assert_twins_disagree(run_parity(small_cfg, batch=4))
    assert [r.kind for r in failures] == ["rounding"]
