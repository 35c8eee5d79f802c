"""Dropout twins: torch.nn.Dropout and core_tf.networks.layers.Dropout draw different masks (each framework's
own generator), so they are compared in distribution: the share of zeros, the scale of what is kept,
identity outside training. Each twin's masks repeat after a reseed (core_*/rng.py), in TF also
inside a compiled step, which is what makes dropout runs reproducible and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

from core_tf.networks.layers import Dropout as TFDropout
from core_tf.runtime.rng import seed_dropout as tf_seed
from core_torch.runtime.rng import seed_dropout as torch_seed

X = np.ones((500, 256), np.float32)


def _torch_drop(rate: float, training: bool = True) -> np.ndarray:
    layer = torch.nn.Dropout(rate)
    layer.train(training)
    return layer(torch.from_numpy(X)).numpy()


def _tf_drop(rate: float, training: bool = True) -> np.ndarray:
    return TFDropout(rate)(tf.constant(X), training=training).numpy()


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_twins_zero_the_same_share_and_scale_the_rest_alike(rate):
    for out in (_torch_drop(rate), _tf_drop(rate)):
        zeros = np.mean(out == 0)
        assert abs(zeros - rate) < 0.01  # 128k units: the binomial sd is below 0.0015
        np.testing.assert_allclose(out[out != 0], np.float32(1 / (1 - rate)), rtol=1e-6)
    np.testing.assert_array_equal(_torch_drop(rate, training=False), X)
    np.testing.assert_array_equal(_tf_drop(rate, training=False), X)


def test_a_reseed_repeats_the_masks_in_both_twins_and_in_a_compiled_tf_step():
    for seed, drop in ((torch_seed, _torch_drop), (tf_seed, _tf_drop)):
        seed(5)
        first, second = drop(0.3), drop(0.3)
        seed(5)
        np.testing.assert_array_equal(drop(0.3), first)
        assert not np.array_equal(first, second)  # the stream moves on between draws
        seed(6)
        assert not np.array_equal(drop(0.3), first)
    layer = TFDropout(0.3)
    step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    tf_seed(5)
    first = step(tf.constant(X)).numpy()
    assert not np.array_equal(step(tf.constant(X)).numpy(), first)
    tf_seed(5)  # the compiled step reads the generator's state, so the reseed reaches it
    np.testing.assert_array_equal(step(tf.constant(X)).numpy(), first)
