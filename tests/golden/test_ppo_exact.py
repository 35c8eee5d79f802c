"""Both twins' exact log-likelihood and PPO loss terms, with the gradients w.r.t. actor_ft and the critic,
against upstream PPOExactDiffusion (get_exact_logprobs, loss) on the same weights, batch and probes: upstream's
shipped options (epsilon prediction, probability-flow ODE, 20 Euler steps) and the other branches (x0
prediction, the reverse SDE's drift, value clipping, unnormalised advantages)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.settings import ExactLikelihoodSettings
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream
from tests.golden.twins import critic_config, diffusion_config, dppo_settings, ppo_settings


def _agent(case: Case, backend: str) -> Any:
    m = case.meta
    dc = diffusion_config(m["diffusion"])
    exact = ExactLikelihoodSettings(
        denoising_steps=dc.denoising_steps, ft_denoising_steps=m["ft_denoising_steps"], step_size=m["sde_step_size"],
        eps=m["sde_eps"], min_beta=m["sde_min_beta"], probability_flow=m["sde_probability_flow"],
        num_epsilon=m["sde_num_epsilon"], hutchinson_type=m["sde_hutchinson_type"],
        predict_epsilon=dc.predict_epsilon)
    d = dppo_settings({"dppo": {"ft_denoising_steps": m["ft_denoising_steps"], "min_sampling_denoising_std": 0.1,
                                "min_logprob_denoising_std": 0.1}})
    s = ppo_settings(clip_ploss_coef=m["clip_ploss_coef"], clip_vloss_coef=m["clip_vloss_coef"],
                     norm_adv=m["norm_adv"], vf_coef=m["vf_coef"])
    if backend == "torch":
        from core_torch.algorithms.ppo_exact_diffusion import PPOExactDiffusionAgent
    else:
        from core_tf.algorithms.ppo_exact_diffusion import PPOExactDiffusionAgent
    return PPOExactDiffusionAgent(dc, critic_config(m["critic"]), s, d, exact, case.params())


def _run(case: Case, backend: str) -> dict[str, np.ndarray]:
    """Upstream's procedure with our twin: score the samples, old log-probs = that + offset, then the loss."""
    i = case.inp
    probes = {k: (2 * i[f"probe_bits_{k}"] - 1).astype(np.float32) for k in ("score", "loss")}
    agent = _agent(case, backend)
    model = agent.model
    batch = {"obs": i["state"], "actions": i["samples"], "returns": i["returns"], "values": i["values"],
             "advantages": i["advantages"], "probes": probes["loss"]}
    named = agent.actor_named + agent.critic_named
    if backend == "torch":
        import torch

        with torch.no_grad():
            logprobs = model.exact_logprobs(torch.from_numpy(i["state"]), torch.from_numpy(i["samples"]),
                                            torch.from_numpy(probes["score"])).numpy()
        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        b["logprobs"] = torch.from_numpy(logprobs + i["oldlogprob_offset"])
        terms = agent.loss_terms(b)
        loss = terms["pg_loss"] + case.meta["vf_coef"] * terms["v_loss"]
        grads = [g.numpy() for g in torch.autograd.grad(loss, [p for _, p in named])]
        terms = {k: v.detach().numpy() for k, v in terms.items()}
    else:
        import tensorflow as tf

        logprobs = model.exact_logprobs(tf.constant(i["state"]), tf.constant(i["samples"]),
                                        tf.constant(probes["score"])).numpy()
        b = {k: tf.constant(v) for k, v in batch.items()}
        b["logprobs"] = tf.constant(logprobs + i["oldlogprob_offset"])
        with tf.GradientTape() as tape:
            terms = agent.loss_terms(b)
            loss = terms["pg_loss"] + case.meta["vf_coef"] * terms["v_loss"]
        grads = [g.numpy() for g in tape.gradient(loss, [v for _, v in named])]
        terms = {k: v.numpy() for k, v in terms.items()}
    return {"logprobs": logprobs, **terms, **{f"grad/{n}": g for (n, _), g in zip(named, grads)}}


@pytest.mark.parametrize("name", ["shipped", "x0_reverse_sde"])
@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_exact_likelihood_loss_and_gradients_match_upstream_ppo_exact_diffusion(name: str, backend: str) -> None:
    case = Case("ppo_exact", name)
    out = _run(case, backend)
    for key in ("logprobs", "pg_loss", "v_loss", "approx_kl"):
        assert_matches_upstream(out[key], case, key, backend, case.inp["advantages"], case.meta["norm_adv"])
    assert float(out["clipfrac"]) == float(case.up32["clipfrac"])
    assert 0.0 < float(case.up32["clipfrac"]) < 1.0  # both branches of the clip are taken
    assert_gradient_matches_upstream(out, case, "grad/actor_ft.", backend)
    assert_gradient_matches_upstream(out, case, "grad/critic.", backend)
