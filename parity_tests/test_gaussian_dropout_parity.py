"""Gaussian_MLP's dropout (IBRL's robomimic configs: fixed std, dropout 0.5 in the mean MLP): outside training both
twins compute the same mean and std from the same canonical parameters; in training each twin drops hidden units
(its own masks, compared in distribution by test_dropout_parity.py) and a reseed repeats them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import torch

from core_tf.networks.gaussian_mlp import GaussianMLP as TFGaussianMLP
from core_tf.runtime.canonical import load_state as tf_load
from core_tf.runtime.rng import seed_dropout as tf_seed
from core_torch.networks.gaussian_mlp import GaussianMLP as TorchGaussianMLP
from core_torch.runtime.canonical import load_state as torch_load
from core_torch.runtime.rng import seed_dropout as torch_seed
from shared.param_spec import GaussianMLPConfig
from shared.param_spec.families import network_init

CFG = GaussianMLPConfig(action_dim=3, horizon_steps=2, cond_dim=8, mlp_dims=(64, 64, 64), activation_type="ReLU",
                        dropout=0.5, fixed_std=0.1)


def test_dropout_is_in_the_mean_mlp_and_changes_no_parameter_name():
    plain = GaussianMLPConfig(**{**CFG.__dict__, "dropout": 0.0})
    assert CFG.mean_only().dropout == 0.5 and list(network_init(CFG, 0)) == list(network_init(plain, 0))


def test_twins_agree_outside_training_and_drop_inside_it():
    params = network_init(CFG, 3)
    x = np.random.default_rng(0).standard_normal((16, 1, 8)).astype(np.float32)
    pt = TorchGaussianMLP(CFG)
    torch_load(pt, params)
    tfm = TFGaussianMLP(CFG)
    tf_load(tfm, params)
    pt.eval()
    with torch.no_grad():
        mean_pt, std_pt = (t.numpy() for t in pt(torch.from_numpy(x)))
    mean_tf, std_tf = (t.numpy() for t in tfm(tf.constant(x), training=False))
    np.testing.assert_allclose(mean_tf, mean_pt, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(std_tf, std_pt)
    pt.train()
    torch_seed(1)
    with torch.no_grad():
        first = pt(torch.from_numpy(x))[0].numpy()
    torch_seed(1)
    with torch.no_grad():
        np.testing.assert_array_equal(pt(torch.from_numpy(x))[0].numpy(), first)
    assert not np.allclose(first, mean_pt, atol=1e-3)
    tf_seed(1)
    first_tf = tfm(tf.constant(x), training=True)[0].numpy()
    tf_seed(1)
    np.testing.assert_array_equal(tfm(tf.constant(x), training=True)[0].numpy(), first_tf)
    assert not np.allclose(first_tf, mean_tf, atol=1e-3)
