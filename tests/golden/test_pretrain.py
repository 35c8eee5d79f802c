"""Pre-training loss, its gradient and the EMA update of both twins against upstream."""

from __future__ import annotations

import numpy as np
import pytest

from shared.lr_schedule import CosineWarmupRestarts
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import diffusion_config

LOSSES = ["loss_eps", "loss_x0"]


def _loss_and_grads(case: Case, backend: str) -> dict[str, np.ndarray]:
    dc = diffusion_config(case.meta["diffusion"])
    i = case.inp
    if backend == "torch":
        import torch

        import core_torch.runtime.canonical as io
        from core_torch.diffusion.model import DiffusionModel

        model = DiffusionModel(dc)
        io.load_state(model, case.params())
        loss = model.loss(*(torch.from_numpy(i[k]) for k in ("x0", "state", "t", "noise")))
        named = list(model.named_parameters())
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss = loss.detach().numpy()
    else:
        import tensorflow as tf

        import core_tf.runtime.canonical as io
        from core_tf.diffusion.model import DiffusionModel

        model = DiffusionModel(dc)
        io.load_state(model, case.params())
        named = list(model.named_parameters())
        with tf.GradientTape() as tape:
            loss = model.loss(*(tf.constant(i[k]) for k in ("x0", "state", "t", "noise")))
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss = loss.numpy()
    return {"loss": loss, **{f"grad/{n}": g for (n, _), g in zip(named, grads)}}


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", LOSSES)
def test_pretraining_loss_and_gradient_match_upstream(name: str, backend: str) -> None:
    case = Case("pretrain", name)
    out = _loss_and_grads(case, backend)
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/network.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_ema_update_matches_upstream(backend: str) -> None:
    case = Case("pretrain", "ema")
    dc = diffusion_config(Case("pretrain", "loss_eps").meta["diffusion"])
    model_p, ema_p = case.params("model/"), case.params("ema/")
    model_p = {k[len("model/"):]: v for k, v in model_p.items()}
    ema_p = {k[len("ema/"):]: v for k, v in ema_p.items()}
    sched = CosineWarmupRestarts(first_cycle_steps=10, max_lr=1e-3)
    if backend == "torch":
        import core_torch.runtime.canonical as io
        from core_torch.algorithms.pretrain import PretrainBackend
    else:
        import core_tf.runtime.canonical as io
        from core_tf.algorithms.pretrain import PretrainBackend
    backend_ = PretrainBackend(dc, model_p, 1e-3, 0.0, sched, steps_per_epoch=1, num_epochs=10)
    io.load_state(backend_.ema, ema_p, "ema")
    backend_.ema_update(case.meta["decay"])
    ema = io.export_state(backend_.ema)
    for key in case.up32:
        assert_matches_upstream(ema[key[len("ema/"):]], case, key, backend)
