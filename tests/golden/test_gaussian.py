"""Both twins' Gaussian PPO (sampling, loss terms, gradients) against upstream PPO_Gaussian."""

from __future__ import annotations

import numpy as np
import pytest

from shared.param_spec import GaussianMLPConfig
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases
from tests.golden.twins import critic_config, ppo_settings

SAMPLES = [n for n in cases("gaussian") if Case("gaussian", n).meta["kind"] == "sample"]
LOSSES = [n for n in cases("gaussian") if Case("gaussian", n).meta["kind"] == "loss"]
def _agent(weights: Case, backend: str, **settings: object) -> object:
    m = weights.meta
    actor = GaussianMLPConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in m["actor"].items()})
    if backend == "torch":
        from core_torch.algorithms.ppo_gaussian import PPOGaussianAgent
    else:
        from core_tf.algorithms.ppo_gaussian import PPOGaussianAgent
    return PPOGaussianAgent(actor, critic_config(m["critic"]), ppo_settings(**settings), weights.params(),
                            m["randn_clip_value"])


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", SAMPLES)
def test_gaussian_sampling_with_injected_noise_matches_upstream(name: str, backend: str) -> None:
    case = Case("gaussian", name)
    w = Case("gaussian", case.meta["weights"])
    out = _agent(w, backend).act(w.inp["obs"], w.inp["noise"], case.meta["deterministic"])
    assert_matches_upstream(out["actions"], case, "actions", backend)


def _loss(case: Case, backend: str) -> dict[str, np.ndarray]:
    m = case.meta
    agent = _agent(Case("gaussian", m["weights"]), backend, norm_adv=m["norm_adv"],
                   clip_vloss_coef=m["clip_vloss_coef"],
                   clip_ploss_coef=m["clip_ploss_coef"], ent_coef=m["ent_coef"], vf_coef=m["vf_coef"])
    batch = {"obs": Case("gaussian", m["weights"]).inp["obs"], **case.inp}
    named = agent.actor_named + agent.critic_named
    if backend == "torch":
        import torch

        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        terms = agent.loss_terms(b)
        loss = terms["pg_loss"] + m["ent_coef"] * terms["entropy_loss"] + m["vf_coef"] * terms["v_loss"]
        grads = torch.autograd.grad(loss, [p for _, p in named])
        with torch.no_grad():
            new, _ = agent._logprob_entropy(b["obs"], b["actions"])
            ratio = (new.clamp(-5, 2) - b["logprobs"].clamp(-5, 2)).exp().mean()
        out = {k: v.detach().numpy() for k, v in terms.items()}
        out["ratio"], grads = ratio.numpy(), [g.numpy() for g in grads]
    else:
        import tensorflow as tf

        b = {k: tf.constant(v) for k, v in batch.items()}
        with tf.GradientTape() as tape:
            terms = agent.loss_terms(b)
            loss = terms["pg_loss"] + m["ent_coef"] * terms["entropy_loss"] + m["vf_coef"] * terms["v_loss"]
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        new, _ = agent._logprob_entropy(b["obs"], b["actions"])
        ratio = tf.reduce_mean(tf.exp(tf.clip_by_value(new, -5, 2) - tf.clip_by_value(b["logprobs"], -5, 2)))
        out = {k: v.numpy() for k, v in terms.items()}
        out["ratio"] = ratio.numpy()
    out.update({f"grad/{n}": g for (n, _), g in zip(named, grads)})
    return out


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", LOSSES)
def test_gaussian_ppo_loss_terms_and_gradients_match_upstream(name: str, backend: str) -> None:
    case = Case("gaussian", name)
    out = _loss(case, backend)
    for key in ("pg_loss", "entropy_loss", "v_loss", "clipfrac", "approx_kl", "ratio"):
        assert_matches_upstream(out[key], case, key, backend, case.inp["advantages"], case.meta["norm_adv"])
    for prefix in ("grad/actor.", "grad/critic."):
        assert_gradient_matches_upstream(out, case, prefix, backend)
