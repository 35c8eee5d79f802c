"""Both twins' networks against upstream's DiffusionMLP, CriticObs and Gaussian_MLP on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from shared.param_spec import CriticObsConfig, DiffusionMLPConfig, GaussianMLPConfig, MLPConfig
from tests.golden.golden import Case, assert_matches_upstream, cases


def _config(meta: dict) -> object:
    kind = {"diffusion_mlp": DiffusionMLPConfig, "critic_obs": CriticObsConfig,
            "gaussian_mlp": GaussianMLPConfig}[meta["kind"]]
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
    return kind(**cfg)


def _torch_out(case: Case, cfg: object) -> dict[str, np.ndarray]:
    import torch

    import core_torch.runtime.canonical as io
    from core_torch.networks.critic import CriticObs
    from core_torch.networks.diffusion_mlp import DiffusionMLP
    from core_torch.networks.gaussian_mlp import GaussianMLP

    state = torch.from_numpy(case.inp["state"])
    with torch.no_grad():
        if isinstance(cfg, DiffusionMLPConfig):
            net = DiffusionMLP.from_config(cfg)
            io.load_state(net, case.params())
            return {"out": net(torch.from_numpy(case.inp["x"]), torch.from_numpy(case.inp["t"]), state).numpy()}
        if isinstance(cfg, CriticObsConfig):
            net = CriticObs.from_config(cfg)
            io.load_state(net, case.params())
            return {"out": net(state).numpy()}
        net = GaussianMLP(cfg)
        io.load_state(net, case.params())
        mean, std = net(state)
        return {"mean": mean.numpy(), "std": std.numpy()}


def _tf_out(case: Case, cfg: object) -> dict[str, np.ndarray]:
    import tensorflow as tf

    import core_tf.runtime.canonical as io
    from core_tf.networks.critic import CriticObs
    from core_tf.networks.diffusion_mlp import DiffusionMLP
    from core_tf.networks.gaussian_mlp import GaussianMLP

    state = tf.constant(case.inp["state"])
    if isinstance(cfg, DiffusionMLPConfig):
        net = DiffusionMLP.from_config(cfg)
        io.load_state(net, case.params())
        return {"out": net(tf.constant(case.inp["x"]), tf.constant(case.inp["t"]), state).numpy()}
    if isinstance(cfg, CriticObsConfig):
        net = CriticObs.from_config(cfg)
        io.load_state(net, case.params())
        return {"out": net(state).numpy()}
    net = GaussianMLP(cfg)
    io.load_state(net, case.params())
    mean, std = net(state)
    return {"mean": mean.numpy(), "std": std.numpy()}


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", cases("networks"))
def test_network_output_matches_upstream(name: str, backend: str) -> None:
    case = Case("networks", name)
    cfg = _config(case.meta)
    assert not isinstance(cfg, MLPConfig)
    out = (_torch_out if backend == "torch" else _tf_out)(case, cfg)
    for key in case.up32:
        assert_matches_upstream(out[key], case, key, backend)
