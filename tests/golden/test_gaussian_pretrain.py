"""Gaussian pre-training: both twins' GaussianModel loss (and its entropy) and the loss's gradient w.r.t. the
network against upstream GaussianModel.loss, for a learned, a fixed and a learned fixed std."""

from __future__ import annotations

import numpy as np
import pytest

from shared.param_spec import GaussianMLPConfig
from shared.settings import GaussianModelConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases

LOSSES = cases("gaussian_pretrain")


def _model_config(meta: dict) -> GaussianModelConfig:
    net = GaussianMLPConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["network"].items()})
    return GaussianModelConfig(network=net, horizon_steps=net.horizon_steps)


def _loss_and_grads(case: Case, backend: str) -> dict[str, np.ndarray]:
    config, ent_coef = _model_config(case.meta), case.meta["ent_coef"]
    actions, state = case.inp["actions"], case.inp["state"]
    if backend == "torch":
        import torch

        import core_torch.runtime.canonical as io
        from core_torch.algorithms.pretrain import GaussianModel

        model = GaussianModel(config)
        io.load_state(model, case.params())
        loss, entropy = model.loss(torch.from_numpy(actions), torch.from_numpy(state), ent_coef)
        named = list(model.named_parameters())
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss, entropy = loss.detach().numpy(), entropy.detach().numpy()
    else:
        import tensorflow as tf

        import core_tf.runtime.canonical as io
        from core_tf.algorithms.pretrain import GaussianModel

        model = GaussianModel(config)
        io.load_state(model, case.params())
        named = list(model.named_parameters())
        with tf.GradientTape() as tape:
            loss, entropy = model.loss(tf.constant(actions), tf.constant(state), ent_coef)
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss, entropy = loss.numpy(), entropy.numpy()
    return {"loss": loss, "entropy": entropy, **{f"grad/{n}": g for (n, _), g in zip(named, grads)}}


def test_every_std_kind_is_covered_with_and_without_the_entropy_bonus() -> None:
    kinds = {(("learned" if m["network"]["fixed_std"] is None else
               "learn_fixed" if m["network"]["learn_fixed_std"] else "fixed"), m["ent_coef"] > 0)
             for m in (Case("gaussian_pretrain", n).meta for n in LOSSES)}
    assert kinds == {(k, e) for k in ("learned", "fixed", "learn_fixed") for e in (False, True)}


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", LOSSES)
def test_gaussian_pretraining_loss_entropy_and_gradient_match_upstream(name: str, backend: str) -> None:
    case = Case("gaussian_pretrain", name)
    out = _loss_and_grads(case, backend)
    assert set(out) - {"loss", "entropy"} == set(case.up32) - {"loss", "entropy"}  # every learned tensor
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_matches_upstream(out["entropy"], case, "entropy", backend)
    assert_gradient_matches_upstream(out, case, "grad/network.", backend)
