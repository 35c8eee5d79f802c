"""Build a torch module and its TF twin from one config and one canonical initialisation."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

import core_tf.diffusion.model as tf_diffusion
import core_tf.networks.critic as tf_critic
import core_tf.networks.mlp as tf_mlp
import core_tf.networks.registry as tf_registry
import core_tf.runtime.canonical as tf_io
import core_torch.diffusion.model as torch_diffusion
import core_torch.networks.critic as torch_critic
import core_torch.networks.mlp as torch_mlp
import core_torch.networks.registry as torch_registry
import core_torch.runtime.canonical as torch_io
from shared.param_spec import (
    CriticObsActConfig,
    CriticObsConfig,
    MLPConfig,
    critic_obs_act_spec,
    critic_obs_spec,
    mlp_spec,
    torch_default_init,
)
from shared.param_spec.families import NETWORK_FAMILIES, network_spec
from shared.precision import as_compute
from shared.settings import DiffusionConfig


def in_compute(arrays: dict[str, Any]) -> dict[str, Any]:
    """Float inputs (drawn as float32) held in the current compute dtype; integers unchanged."""
    return {k: as_compute(v) if np.asarray(v).dtype.kind == "f" else v for k, v in arrays.items()}


REGISTERED = frozenset(f.config for f in NETWORK_FAMILIES)


def twin_pair(cfg: Any, seed: int) -> tuple[Any, Any, OrderedDict]:
    """(torch module, tf module, canonical params) for any network or diffusion config."""
    if isinstance(cfg, MLPConfig):
        spec = mlp_spec(cfg)
        th, tf_ = torch_mlp.build_mlp(cfg), tf_mlp.build_mlp(cfg)
    elif type(cfg) in REGISTERED:  # any network family of shared/param_spec/families.py
        spec = network_spec(cfg)
        th, tf_ = torch_registry.build_network(cfg), tf_registry.build_network(cfg)
    elif isinstance(cfg, CriticObsConfig):
        spec = critic_obs_spec(cfg)
        th, tf_ = torch_critic.CriticObs.from_config(cfg), tf_critic.CriticObs.from_config(cfg)
    elif isinstance(cfg, CriticObsActConfig):
        spec = critic_obs_act_spec(cfg)
        th, tf_ = torch_critic.CriticObsAct(cfg), tf_critic.CriticObsAct(cfg)
    elif isinstance(cfg, DiffusionConfig):
        spec = network_spec(cfg.network, "network.")
        th, tf_ = torch_diffusion.DiffusionModel(cfg), tf_diffusion.DiffusionModel(cfg)
    else:
        raise TypeError(f"no twins for {type(cfg).__name__}")
    params = torch_default_init(spec, seed)
    torch_io.load_state(th, params)
    tf_io.load_state(tf_, params)
    th.eval()
    return th, tf_, params
