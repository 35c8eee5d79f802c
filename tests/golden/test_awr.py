"""AWR's TD(lambda) targets (shared/algorithms/awr.py) and both twins' critic loss with its gradient against upstream's
td_values and AWRDiffusion.loss_critic."""

from __future__ import annotations

import numpy as np
import pytest

from shared.algorithms.awr import td_lambda_targets
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import critic_config


@pytest.mark.parametrize("name", ["td_last_alive", "td_last_terminated"])
def test_td_lambda_targets_match_upstream_td_values(name: str) -> None:
    case = Case("awr", name)
    i = case.inp
    assert i["terminated"].any() and (~i["terminated"]).any()
    out = td_lambda_targets(i["rewards"], i["terminated"], i["values"], case.meta["gamma"], case.meta["alpha"],
                            case.meta["lambda"])
    assert out.dtype == np.float32
    assert_matches_upstream(out, case, "targets")


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_all_pairs_critic_loss_and_gradient_match_upstream(backend: str) -> None:
    case = Case("awr", "critic_loss")
    cfg = critic_config(case.meta["critic"])
    params = {k[len("critic."):]: v for k, v in case.params().items()}
    state, targets = case.inp["state"], case.inp["targets"]
    if backend == "torch":
        import torch

        import core_torch.runtime.canonical as io
        from core_torch.algorithms.awr_diffusion import critic_loss
        from core_torch.networks.critic import CriticObs

        critic = CriticObs.from_config(cfg)
        io.load_state(critic, params)
        named = list(critic.named_parameters())
        loss = critic_loss(critic(torch.from_numpy(state)), torch.from_numpy(targets), all_pairs=True)
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss = loss.detach().numpy()
    else:
        import tensorflow as tf

        import core_tf.runtime.canonical as io
        from core_tf.algorithms.awr_diffusion import critic_loss
        from core_tf.networks.critic import CriticObs

        critic = CriticObs.from_config(cfg)
        io.load_state(critic, params)
        named = list(critic.named_parameters())
        with tf.GradientTape() as tape:
            loss = critic_loss(critic(tf.constant(state)), tf.constant(targets), all_pairs=True)
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss = loss.numpy()
    out = {"loss": loss, **{f"grad/critic.{n}": g for (n, _), g in zip(named, grads)}}
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/critic.", backend)
