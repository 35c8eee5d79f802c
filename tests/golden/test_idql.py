"""IDQL's losses, Polyak target and acting (both twins, float32) against upstream IDQLDiffusion on the
recorded batch: loss_critic_v, loss_critic_q and the denoising loss with their gradients, the target Q
after update_target_critic, and forward's argmax and expectile-weighted candidate choice."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import CriticObsActConfig
from shared.settings.idql import IDQLSettings
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import critic_config, diffusion_config


def _agent(case: Case, backend: str) -> Any:
    m = case.meta
    dc = diffusion_config(m["diffusion"])
    q = CriticObsActConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in m["critic_q"].items()})
    flat = CosineWarmupRestarts(first_cycle_steps=1, max_lr=1e-3, min_lr=1e-3)
    s = IDQLSettings(n_train_itr=1, n_steps=1, n_envs=1, act_steps=dc.horizon_steps, batch_size=1, gamma=m["gamma"],
                     actor_lr=1e-3, critic_lr=1e-3, actor_weight_decay=0.0, critic_weight_decay=0.0,
                     actor_schedule=flat, critic_schedule=flat, max_grad_norm=None, scale_reward_factor=1.0,
                     buffer_transitions=1, replay_ratio=1.0, n_critic_warmup_itr=0,
                     min_sampling_denoising_std=m["min_sampling_denoising_std"], denoising_steps=dc.denoising_steps,
                     val_freq=1, save_model_freq=1, critic_tau=m["tau"], num_sample=m["num_sample"],
                     use_expectile_exploration=True, eval_deterministic=True, critic_hyperparam=m["critic_hyperparam"],
                     expectile=m["expectile"])
    if backend == "torch":
        from core_torch.algorithms.idql_diffusion import IDQLDiffusionAgent
    else:
        from core_tf.algorithms.idql_diffusion import IDQLDiffusionAgent
    return IDQLDiffusionAgent(dc, q, critic_config(m["critic_v"]), s, OrderedDict(case.params()))


def _losses_torch(agent: Any, i: dict[str, np.ndarray], gamma: float, expectile: float) -> dict[str, np.ndarray]:
    import torch

    from core_torch.algorithms.idql_diffusion import q_loss, value_loss
    from core_torch.algorithms.target_network import polyak_update

    x = {k: torch.from_numpy(v) for k, v in i.items()}
    m, out = agent.model, {}
    for name, loss, prefix in (
            ("critic_v", value_loss(agent.critic_v, agent.critic_q_target, x["obs"], x["actions"], expectile),
             "critic_v."),
            ("critic_q", q_loss(agent.critic_q, agent.critic_v, x["obs"], x["next_obs"], x["actions"], x["rewards"],
                                x["terminated"], gamma), "critic_q."),
            ("network", m.loss(x["actions"], x["obs"], x["t"], x["noise"]), "network.")):
        named = [(n, p) for n, p in m.named_parameters() if n.startswith(prefix)]
        grads = torch.autograd.grad(loss, [p for _, p in named])
        out[f"loss/{name}"] = loss.detach().numpy()
        out.update({f"grad/{n}": g.numpy() for (n, _), g in zip(named, grads)})
    polyak_update(list(agent.critic_q_target.parameters()), list(agent.critic_q.parameters()),
                  agent.settings.critic_tau)
    out.update({f"target/{n}": p.detach().numpy() for n, p in m.named_parameters() if n.startswith("critic_q_target.")})
    return out


def _losses_tf(agent: Any, i: dict[str, np.ndarray], gamma: float, expectile: float) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from core_tf.algorithms.idql_diffusion import q_loss, value_loss
    from core_tf.algorithms.target_network import polyak_update

    x = {k: tf.constant(v) for k, v in i.items()}
    m, out = agent.model, {}
    named_all = list(m.named_parameters())
    for name, prefix in (("critic_v", "critic_v."), ("critic_q", "critic_q."), ("network", "network.")):
        named = [(n, v) for n, v in named_all if n.startswith(prefix)]
        with tf.GradientTape() as tape:
            if name == "critic_v":
                loss = value_loss(agent.critic_v, agent.critic_q_target, x["obs"], x["actions"], expectile)
            elif name == "critic_q":
                loss = q_loss(agent.critic_q, agent.critic_v, x["obs"], x["next_obs"], x["actions"], x["rewards"],
                              x["terminated"], gamma)
            else:
                loss = m.loss(x["actions"], x["obs"], x["t"], x["noise"])
        grads = tape.gradient(loss, [v for _, v in named])
        out[f"loss/{name}"] = loss.numpy()
        out.update({f"grad/{n}": g.numpy() for (n, _), g in zip(named, grads)})
    polyak_update([v for n, v in named_all if n.startswith("critic_q_target.")],
                  [v for n, v in named_all if n.startswith("critic_q.")], agent.settings.critic_tau)
    out.update({f"target/{n}": v.numpy() for n, v in named_all if n.startswith("critic_q_target.")})
    return out


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_value_q_and_denoising_losses_gradients_and_polyak_target_match_upstream(backend: str) -> None:
    case = Case("idql", "losses")
    agent = _agent(case, backend)
    keys = ("obs", "next_obs", "actions", "rewards", "terminated", "t", "noise")
    run = _losses_torch if backend == "torch" else _losses_tf
    out = run(agent, {k: case.inp[k] for k in keys}, case.meta["gamma"], case.meta["expectile"])
    for name in ("critic_v", "critic_q", "network"):
        assert_matches_upstream(out[f"loss/{name}"], case, f"loss/{name}", backend)
        assert_gradient_matches_upstream(out, case, f"grad/{name}.", backend)
    for key in (k for k in case.up32 if k.startswith("target/")):
        assert_matches_upstream(out[key], case, key, backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name, deterministic", [("act_argmax", True), ("act_expectile", False)])
def test_candidate_scoring_and_choice_match_upstream(backend: str, name: str, deterministic: bool) -> None:
    case = Case("idql", name)
    agent = _agent(case, backend)
    chain, z = case.inp["chain_noise"], case.inp["choice_normals"]
    choice = np.zeros((1, *chain.shape[1:]), np.float32)
    choice[0, :len(z), 0, 0] = z
    actions = agent.act(case.inp["obs"], np.concatenate([chain, choice]), deterministic)["actions"]
    assert_matches_upstream(actions, case, "actions", backend)
    if not deterministic:  # upstream's draw was a real choice: both weights occur among some observation's candidates
        w = case.up32["tau_weights"]  # (S, B), normalised per observation
        assert any(len(np.unique(np.round(w[:, b], 6))) > 1 for b in range(w.shape[1]))
