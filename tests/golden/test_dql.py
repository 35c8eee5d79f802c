"""Both DQL twins against upstream DQLDiffusion: the critic loss (next chunks from the no-gradient
exploration chain, the target critic's min(Q1', Q2'), the terminal mask) with its critic gradient, and the
actor loss through the differentiable chain with each coin-flipped Q head (one case with a truthy
final_action_clip_value, which upstream's training chain reads as a [-1, 1] clamp) with its policy gradient."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from shared.param_spec import CriticObsActConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import diffusion_config


def _parts(case: Case, backend: str) -> tuple:
    """Our model (network.*), critic and target critic with the recorded weights, and the DQL options."""
    params = Case("dql", "critic_loss").params()  # stored once
    meta = case.meta
    critic_cfg = CriticObsActConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["critic"].items()})
    dc = diffusion_config(meta["diffusion"])
    if backend == "torch":
        import core_torch.runtime.canonical as io
        from core_torch.diffusion.model import DiffusionModel
        from core_torch.networks.critic import CriticObsAct
    else:
        import core_tf.runtime.canonical as io
        from core_tf.diffusion.model import DiffusionModel
        from core_tf.networks.critic import CriticObsAct
    model, critic, target = DiffusionModel(dc), CriticObsAct(critic_cfg), CriticObsAct(critic_cfg)
    for module, prefix in ((model, "network."), (critic, "critic."), (target, "critic_target.")):
        strip = 0 if prefix == "network." else len(prefix)
        io.load_state(module, {k[strip:]: v for k, v in params.items() if k.startswith(prefix)})
    s = SimpleNamespace(min_sampling_denoising_std=meta["min_sampling_denoising_std"], act_steps=dc.horizon_steps,
                        final_action_clip=bool(dc.final_action_clip_value), eta=meta.get("eta"))
    return model, critic, target, s


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_critic_loss_and_gradient_match_upstream(backend: str) -> None:
    case = Case("dql", "critic_loss")
    i, gamma = case.inp, case.meta["gamma"]
    assert i["terminated"].any() and not i["terminated"].all()
    model, critic, target, s = _parts(case, backend)
    if backend == "torch":
        import torch

        from core_torch.algorithms.dql_diffusion import critic_loss, td_targets

        t = {k: torch.from_numpy(v) for k, v in i.items()}
        next_a = model.sample(t["next_obs"], t["next_noise"], False, s.min_sampling_denoising_std).trajectories
        loss = critic_loss(critic, t["obs"], t["actions"],
                           td_targets(target, t["next_obs"], next_a, t["rewards"], t["terminated"], gamma))
        named = list(critic.named_parameters())
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss = loss.detach().numpy()
    else:
        import tensorflow as tf

        from core_tf.algorithms.dql_diffusion import critic_loss, td_targets

        t = {k: tf.constant(v) for k, v in i.items()}
        next_a = model._chain(t["next_obs"], t["next_noise"], model.plan(False, s.min_sampling_denoising_std))[0]
        named = list(critic.named_parameters())
        with tf.GradientTape() as tape:
            loss = critic_loss(critic, t["obs"], t["actions"],
                               td_targets(target, t["next_obs"], next_a, t["rewards"], t["terminated"], gamma))
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss = loss.numpy()
    out = {"loss": loss, **{f"grad/critic.{n}": g for (n, _), g in zip(named, grads)}}
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/critic.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", ["actor_loss_q1", "actor_loss_q2_clamped"])
def test_actor_loss_through_the_chain_and_its_gradient_match_upstream(name: str, backend: str) -> None:
    case = Case("dql", name)
    i = case.inp
    model, critic, _, s = _parts(case, backend)
    q1_head = np.array(case.meta["coin"] > 0.5, np.float32)  # upstream's test: np.random.uniform() > 0.5
    if backend == "torch":
        import torch

        from core_torch.algorithms.dql_diffusion import actor_loss

        t = {k: torch.from_numpy(v) for k, v in i.items()}
        loss = actor_loss(model, critic, t["obs"], t["chain_noise"], t["t"], t["noise"], torch.from_numpy(q1_head), s)
        named = list(model.named_parameters())
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        loss = loss.detach().numpy()
    else:
        import tensorflow as tf

        from core_tf.algorithms.dql_diffusion import actor_loss

        t = {k: tf.constant(v) for k, v in i.items()}
        named = list(model.named_parameters())
        with tf.GradientTape() as tape:
            loss = actor_loss(model, critic, t["obs"], t["chain_noise"], t["t"], t["noise"], tf.constant(q1_head), s)
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        loss = loss.numpy()
    out = {"loss": loss, **{f"grad/{n}": g for (n, _), g in zip(named, grads)}}
    assert_matches_upstream(out["loss"], case, "loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/network.", backend)
