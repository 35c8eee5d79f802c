"""The gate is not vacuous: a one-line drift in either twin makes the comparison fail."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

import core_tf.activations as tf_acts
import core_tf.diffusion as tf_diffusion
import core_torch.diffusion as torch_diffusion
from dppo.parity import run_parity
from shared.settings import load_settings

CONFIG = "configs/hopper/pretrain_diffusion_mlp.yaml"
SMALL = ["model.network.mlp_dims=[32,32,32]"]


@pytest.fixture(scope="module")
def small_cfg():
    return load_settings(CONFIG, SMALL)


def test_unmodified_twins_pass(small_cfg):
    assert run_parity(small_cfg, batch=4).ok


def test_changed_activation_in_tf_twin_fails(small_cfg, monkeypatch):
    monkeypatch.setitem(tf_acts._FUNCTIONS, "ReLU", tf.nn.elu)
    report = run_parity(small_cfg, batch=4)
    assert not report.ok
    assert any(r.section == "network/forward" for r in report.failures)


def test_changed_constant_in_tf_twin_fails(small_cfg, monkeypatch):
    original = tf_diffusion.DiffusionModel.reverse_mean

    def drifted(self, x, net_out, coefs):
        return original(self, x, net_out, {**coefs, "mean_xt": coefs["mean_xt"] * 1.001})

    monkeypatch.setattr(tf_diffusion.DiffusionModel, "reverse_mean", drifted)
    report = run_parity(small_cfg, batch=4)
    assert not report.ok
    assert {r.section for r in report.failures} == {"sampler"}


def test_flipped_sign_in_torch_twin_fails(small_cfg, monkeypatch):
    def drifted(self, x0, t, noise):
        a = self.sqrt_alphas_cumprod[t][:, None, None]
        s = self.sqrt_one_minus_alphas_cumprod[t][:, None, None]
        return a * x0 - s * noise

    monkeypatch.setattr(torch_diffusion.DiffusionModel, "q_sample", drifted)
    report = run_parity(small_cfg, batch=4)
    assert not report.ok
    assert any(r.section.startswith("loss") for r in report.failures)


def test_changed_time_embedding_in_torch_twin_fails(small_cfg, monkeypatch):
    import core_torch.embeddings as emb

    monkeypatch.setattr(emb.SinusoidalPosEmb, "forward",
                        lambda self, t: torch.cat([(t.float()[:, None] * self.freqs).cos(),
                                                   (t.float()[:, None] * self.freqs).sin()], -1))
    report = run_parity(small_cfg, batch=4)
    assert any(r.name == "network.time_embedding.0" or r.name == "time_embedding.0" for r in report.failures)
    assert np.isfinite([r.rel for r in report.rows]).all()
