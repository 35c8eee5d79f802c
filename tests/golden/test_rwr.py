"""RWR's reward-weighted loss, its gradient and its sampler in both twins against upstream RWRDiffusion."""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import diffusion_config


def _model(case: Case, backend: str) -> object:
    dc = diffusion_config(case.meta["diffusion"])
    if backend == "torch":
        import core_torch.runtime.canonical as io
        from core_torch.diffusion.model import DiffusionModel
    else:
        import core_tf.runtime.canonical as io
        from core_tf.diffusion.model import DiffusionModel
    model = DiffusionModel(dc)
    io.load_state(model, case.params())
    return model


def _loss_and_grads(case: Case, backend: str) -> dict[str, np.ndarray]:
    model, i = _model(case, backend), case.inp
    args = [i[k] for k in ("x0", "state", "t", "noise", "weights")]
    if backend == "torch":
        import torch

        from core_torch.algorithms.rwr_diffusion import weighted_denoising_loss

        named = list(model.named_parameters())
        loss = weighted_denoising_loss(model, *(torch.from_numpy(a) for a in args))
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss = loss.detach().numpy()
    else:
        import tensorflow as tf

        from core_tf.algorithms.rwr_diffusion import weighted_denoising_loss

        named = list(model.named_parameters())
        with tf.GradientTape() as tape:
            loss = weighted_denoising_loss(model, *(tf.constant(a) for a in args))
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss = loss.numpy()
    return {"loss": loss, **{f"grad/{n}": g for (n, _), g in zip(named, grads)}}


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", ["loss_eps", "loss_x0"])
def test_reward_weighted_loss_and_gradient_match_upstream(name: str, backend: str) -> None:
    case = Case("rwr", name)
    assert (case.inp["weights"] == case.meta["max_reward_weight"]).any()  # the clip is in the batch
    out = _loss_and_grads(case, backend)
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/network.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", ["sample_stochastic", "sample_deterministic"])
def test_rwr_sampler_with_its_std_floor_matches_upstream(name: str, backend: str) -> None:
    """The RWR agent's act(): every step's std floored at min_sampling_denoising_std (stochastic), or
    upstream's evaluation sampling (deterministic)."""
    from shared.lr_schedule import CosineWarmupRestarts
    from shared.settings.rwr import RWRSettings

    case = Case("rwr", name)
    dc = diffusion_config(case.meta["diffusion"])
    flat = CosineWarmupRestarts(first_cycle_steps=2, max_lr=1e-4, min_lr=1e-4)
    s = RWRSettings(n_train_itr=1, n_steps=1, n_envs=1, gamma=0.99, batch_size=1, update_epochs=1, lr=1e-4,
                    weight_decay=0.0, schedule=flat, max_grad_norm=None, beta=1.0, max_reward_weight=10.0,
                    min_sampling_denoising_std=case.meta["min_sampling_denoising_std"], val_freq=1, save_model_freq=1)
    if backend == "torch":
        from core_torch.algorithms.rwr_diffusion import RWRDiffusionAgent
    else:
        from core_tf.algorithms.rwr_diffusion import RWRDiffusionAgent
    agent = RWRDiffusionAgent(dc, s, case.params())
    actions = agent.act(case.inp["state"], case.inp["noise"], case.meta["deterministic"])["actions"]
    assert_matches_upstream(actions, case, "actions", backend)
