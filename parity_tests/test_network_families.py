"""The network-family registry: every family builds in both twins from its settings, with the spec's names,
and a config section is read as the family its `_target_` names."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import core_tf.networks.registry as tf_registry
import core_tf.runtime.canonical as tf_io
import core_torch.networks.registry as torch_registry
import core_torch.runtime.canonical as torch_io
from parity_tests.strategies import FAMILY_CONFIGS, examples
from shared.config.reader import read
from shared.errors import ConfigError
from shared.param_spec.families import (
    NETWORK_FAMILIES,
    DenoiserNetworkConfig,
    family_of,
    network_init,
    network_spec,
    role_union,
)
from shared.settings.model import DiffusionConfig

_FAMILIES = {f.name: f for f in NETWORK_FAMILIES}


def test_every_family_has_a_config_strategy():
    assert set(FAMILY_CONFIGS) == set(_FAMILIES)


@pytest.mark.parametrize("name", sorted(_FAMILIES))
@examples(1, 6)
@given(data=st.data())
def test_a_family_builds_in_both_twins_with_the_spec_names_and_shapes(name, data):
    cfg = data.draw(FAMILY_CONFIGS[name])
    assert family_of(cfg) is _FAMILIES[name]
    spec = {k: tuple(v) for k, v in network_spec(cfg).items()}
    th, tf_ = torch_registry.build_network(cfg), tf_registry.build_network(cfg)
    assert type(th).__name__ == type(tf_).__name__ == _FAMILIES[name].cls
    assert {k: tuple(v) for k, v in torch_io.parameter_shapes(th).items()} == spec
    assert {k: tuple(v) for k, v in tf_io.parameter_shapes(tf_).items()} == spec


@pytest.mark.parametrize("name", sorted(_FAMILIES))
@examples(1, 6)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_a_family_init_gives_the_spec_names_and_shapes_in_float32_from_its_seed(name, data, seed):
    cfg = data.draw(FAMILY_CONFIGS[name])
    init = network_init(cfg, seed, "net.")
    assert {k: v.shape for k, v in init.items()} == dict(network_spec(cfg, "net."))
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in init.values())
    again = network_init(cfg, seed, "net.")
    assert all(np.array_equal(init[k], again[k]) for k in init)


def _diffusion_section(network: dict) -> dict:
    return {"network": network, "horizon_steps": 4, "obs_dim": 3, "action_dim": 2}


_MLP = {"mlp_dims": [8, 8], "time_dim": 4, "cond_dim": 3, "action_dim": 2, "horizon_steps": 4}


def test_a_section_is_read_as_the_family_its_target_names():
    by_target = read(DiffusionConfig, _diffusion_section(
        {"_target_": "model.diffusion.mlp_diffusion.DiffusionMLP", **_MLP}), "model")
    by_default = read(DiffusionConfig, _diffusion_section(_MLP), "model")
    assert by_target.network == by_default.network
    assert type(by_target.network) in (role_union("denoiser"), *getattr(DenoiserNetworkConfig, "__args__", ()))


def test_a_target_no_family_of_the_role_has_is_refused_in_one_line():
    section = _diffusion_section({"_target_": "model.common.mlp_gaussian.Gaussian_MLP", **_MLP})
    with pytest.raises(ConfigError, match=r"model\.network\._target_.*Gaussian_MLP.*not supported here"):
        read(DiffusionConfig, section, "model")
