"""QSM in both twins against upstream QSMDiffusion on one set of weights and one batch: the double-Q TD
critic loss (next chunks sampled by the policy with the std floor, scored by the target critic) with its
gradient w.r.t. the critic and the next chunks themselves, and the Q-score matching actor loss
(q_grad_coeff 10, dQ/da at the noisy chunk) with its gradient w.r.t. the policy network.

The agents are built as `dppo finetune` builds them: from upstream's hopper QSM config with the recorded
overrides (tiny networks, 5 denoising steps, batch 6)."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from dppo.agents import make_agent
from shared.settings import QSMConfig, load_settings
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream

BATCH = ("obs", "next_obs", "actions", "rewards", "terminated", "chain_noise", "t", "noise")


@cache
def _case() -> Case:
    return Case("qsm", "losses")


def _config(case: Case) -> QSMConfig:
    """Our reading of the config upstream was built from, checked against the options it recorded."""
    import dataclasses

    m = case.meta
    cfg = load_settings(m["config"], m["overrides"], ("finetune",))
    assert isinstance(cfg, QSMConfig)
    s = cfg.qsm
    assert (s.gamma, s.q_grad_coeff, s.min_sampling_denoising_std) == (m["gamma"], m["q_grad_coeff"],
                                                                       m["min_sampling_denoising_std"])
    assert dataclasses.asdict(cfg.diffusion) == {**m["diffusion"], "network": {
        k: tuple(v) if isinstance(v, list) else v for k, v in m["diffusion"]["network"].items()}}
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.critic.__dict__.items()} == m["critic"]
    return cfg


class _TargetSpy:
    """Stands in for the agent's target critic and keeps the chunks it is given (upstream's were recorded
    with a forward hook on its target_q)."""

    def __init__(self, target: Any) -> None:
        self.target, self.actions = target, []

    def __call__(self, obs: Any, actions: Any) -> Any:
        self.actions.append(np.asarray(actions.detach() if hasattr(actions, "detach") else actions))
        return self.target(obs, actions)


def run_losses(case: Case, backend: str) -> dict[str, np.ndarray]:
    """Both losses, their gradients and the next chunks, from a fresh agent of `backend`."""
    agent = make_agent(_config(case), backend, case.params())
    spy = agent.critic_target = _TargetSpy(agent.critic_target)
    named = list(agent.model.named_parameters())
    critic = [(n, p) for n, p in named if n.startswith("critic.")]
    network = [(n, p) for n, p in named if n.startswith("network.")]
    if backend == "torch":
        import torch

        b = {k: torch.from_numpy(case.inp[k]) for k in BATCH}
        critic_loss = agent.critic_loss(b)
        critic_grads = torch.autograd.grad(critic_loss, [p for _, p in critic])
        actor_loss = agent.actor_loss(b)
        actor_grads = torch.autograd.grad(actor_loss, [p for _, p in network])
        critic_loss, actor_loss = critic_loss.detach(), actor_loss.detach()
    else:
        import tensorflow as tf

        b = {k: tf.constant(case.inp[k]) for k in BATCH}
        with tf.GradientTape() as tape:
            critic_loss = agent.critic_loss(b)
        critic_grads = tape.gradient(critic_loss, [v for _, v in critic])
        with tf.GradientTape() as tape:
            actor_loss = agent.actor_loss(b, training=True)
        actor_grads = tape.gradient(actor_loss, [v for _, v in network])
    assert len(spy.actions) == 1
    return {"critic_loss": np.asarray(critic_loss), "actor_loss": np.asarray(actor_loss),
            "next_actions": spy.actions[0],
            **{f"grad/{n}": np.asarray(g) for (n, _), g in zip(critic + network, [*critic_grads, *actor_grads])}}


@cache
def _ours(backend: str) -> dict[str, np.ndarray]:
    return run_losses(_case(), backend)


def test_fixture_batch_exercises_terminations_and_the_noise_clip() -> None:
    i, m = _case().inp, _case().meta
    assert i["terminated"].any() and not i["terminated"].all()
    assert np.abs(i["chain_noise"]).max() > m["diffusion"]["randn_clip_value"]
    assert not any(np.array_equal(v, i[f"param/critic_target.{k[len('param/critic.'):]}"])
                   for k, v in i.items() if k.startswith("param/critic."))


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_critic_td_loss_next_chunks_and_critic_gradient_match_upstream(backend: str) -> None:
    case, out = _case(), _ours(backend)
    assert_matches_upstream(out["next_actions"], case, "next_actions", backend)
    assert_matches_upstream(out["critic_loss"], case, "critic_loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/critic.", backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_q_score_matching_actor_loss_and_network_gradient_match_upstream(backend: str) -> None:
    case, out = _case(), _ours(backend)
    assert_matches_upstream(out["actor_loss"], case, "actor_loss", backend)
    assert_gradient_matches_upstream(out, case, "grad/network.", backend)
