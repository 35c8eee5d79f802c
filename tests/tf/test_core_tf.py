"""Unit tests of the TensorFlow twin on its own (names, init, compiled sampler contract)."""

import numpy as np
import pytest
import tensorflow as tf

from core_tf.diffusion.model import DiffusionModel
from core_tf.networks.critic import CriticObs
from core_tf.networks.diffusion_mlp import DiffusionMLP
from core_tf.networks.mlp import MLP
from core_tf.runtime.canonical import export_state, load_state
from shared.errors import CheckpointError
from shared.param_spec import CriticObsConfig, critic_obs_spec, diffusion_mlp_spec
from shared.settings import load_settings

HOPPER = load_settings("configs/hopper/pretrain_diffusion_mlp.yaml").model


def test_parameter_names_and_shapes_are_the_canonical_spec():
    model = DiffusionModel(HOPPER)
    assert {n: tuple(v.shape) for n, v in model.named_parameters()} == dict(
        diffusion_mlp_spec(HOPPER.network, "network."))
    assert len(model.trainable_variables) == len(list(model.named_parameters()))
    critic = CriticObs(11, [256, 256, 256], "Mish", residual_style=True)
    assert [n for n, _ in critic.named_parameters()] == list(
        critic_obs_spec(CriticObsConfig(11, (256, 256, 256), "Mish", residual_style=True)))


def test_default_init_is_torch_linear_uniform():
    keras_seed = 0
    tf.keras.utils.set_random_seed(keras_seed)
    net = DiffusionMLP(3, 4, 11, mlp_dims=[512, 512, 512], residual_style=True)
    w = net.mlp_mean.child("layers.1").l1.weight.numpy()
    bound = 1 / np.sqrt(512)
    assert np.abs(w).max() <= bound
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.02)


def test_sampler_is_one_compiled_graph_for_any_batch():
    model = DiffusionModel(HOPPER)
    for batch in (1, 7, 40):
        out = model.sample(np.zeros((batch, 1, 11), np.float32), return_chain=True)
        assert out.trajectories.shape == (batch, 4, 3) and out.chains.shape == (batch, 21, 4, 3)
    fn = model.compiled_sampler()
    assert isinstance(fn, tf.types.experimental.PolymorphicFunction)
    assert fn.experimental_get_tracing_count() == 1


def test_sampler_reproducible_with_a_seeded_generator():
    model = DiffusionModel(HOPPER)
    state = np.zeros((3, 1, 11), np.float32)
    a = model.sample(state, generator=tf.random.Generator.from_seed(5)).trajectories
    b = model.sample(state, generator=tf.random.Generator.from_seed(5)).trajectories
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_dropout_only_in_training_mode():
    mlp = MLP([4, 16, 2], "ReLU", dropout=0.5)
    x = tf.ones((64, 4))
    np.testing.assert_array_equal(mlp(x, training=False).numpy(), mlp(x).numpy())
    assert not np.array_equal(mlp(x, training=True).numpy(), mlp(x, training=True).numpy())


def test_strict_load_names_the_bad_tensor():
    model = DiffusionModel(HOPPER)
    state = export_state(model)
    state["network.mlp_mean.layers.0.weight"] = state["network.mlp_mean.layers.0.weight"][:, :-1]
    with pytest.raises(CheckpointError, match="network.mlp_mean.layers.0.weight"):
        load_state(model, state)
