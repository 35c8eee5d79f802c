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

import core_tf.algorithms.qsm_diffusion
import core_tf.diffusion.model
import core_torch.algorithms.qsm_diffusion
import core_torch.diffusion.model
import shared.diffusion.sampling_plan
from dppo.algorithms.agents import make_agent
from shared.settings import load_settings
from shared.settings.qsm import QSMConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, patch_everywhere

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


# ------------------------------------------------ the gate is not vacuous for QSM: one deliberate drift in
# shared/diffusion/sampling_plan.py or in the twins' actor loss fails the comparison above
# (tests/golden/test_golden_catches_drift.py explains the pattern)

def _qsm_check(backend: str, keys: tuple[str, ...], grads: str) -> None:
    case = _case()
    out = run_losses(case, backend)  # a fresh agent every call
    for key in keys:
        assert_matches_upstream(out[key], case, key, backend)
    assert_gradient_matches_upstream(out, case, grads, backend)


def _no_floor_at_last_exploration_step(monkeypatch):
    """Exploration DDPM sampling with its std floor skipped at t = 0 (the schedule's own tiny std there)."""
    original = shared.diffusion.sampling_plan.sampling_plan

    def drifted(*args, **kwargs):
        plan = original(*args, **kwargs)
        if plan.alpha is None and plan.std[-1] > 0.0:  # a stochastic DDPM plan
            std = plan.std.copy()
            std[-1] = np.exp(0.5 * plan.log_variance[-1])
            return type(plan)(**{**plan.__dict__, "std": std})
        return plan

    twin_samplers = {core_torch.diffusion.model.__name__, core_tf.diffusion.model.__name__}
    assert set(patch_everywhere(monkeypatch, shared.diffusion.sampling_plan, "sampling_plan", drifted)) >= twin_samplers


class _GradientAtCleanChunk:
    """A critic that, asked at the noisy chunk a, answers Q(s, x0 + a - sg(a)): its action gradient is
    dQ/da at the clean chunk x0 (the paper's algorithm block) instead of at a (upstream's code)."""

    def __init__(self, critic, x0, stop_gradient):
        self.critic, self.x0, self.stop_gradient = critic, x0, stop_gradient

    def __call__(self, obs, a):
        return self.critic(obs, self.x0 + (a - self.stop_gradient(a)))


def _action_gradient_at_clean_chunk(monkeypatch):
    import tensorflow as tf

    for module, stop_gradient in ((core_torch.algorithms.qsm_diffusion, lambda a: a.detach()),
                                  (core_tf.algorithms.qsm_diffusion, tf.stop_gradient)):
        original = module.qsm_actor_loss

        def drifted(model, critic, obs, x0, *rest, original=original, stop_gradient=stop_gradient, **kw):
            return original(model, _GradientAtCleanChunk(critic, x0, stop_gradient), obs, x0, *rest, **kw)

        monkeypatch.setattr(module, "qsm_actor_loss", drifted)


@pytest.mark.deliberate_drift
@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize(("drift", "keys", "grads", "failing"),
                         [(_no_floor_at_last_exploration_step, ("next_actions", "critic_loss"), "grad/critic.",
                           "next_actions"),
                          (_action_gradient_at_clean_chunk, ("actor_loss",), "grad/network.", "actor_loss")],
                         ids=["no_std_floor_at_t0", "dQda_at_clean_chunk"])
def test_qsm_drift_fails_qsm_golden(drift, keys, grads, failing, backend, monkeypatch):
    _qsm_check(backend, keys, grads)
    drift(monkeypatch)
    with pytest.raises(AssertionError, match=rf"qsm/losses/{failing} {backend}: .*exceeds the budget"):
        _qsm_check(backend, keys, grads)
