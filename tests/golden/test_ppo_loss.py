"""Every DPPO loss term and the total-loss gradients of both twins against upstream PPODiffusion.loss."""

from __future__ import annotations

import numpy as np
import pytest

from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream, cases
from tests.golden.twins import critic_config, diffusion_config, dppo_settings, ppo_settings, with_eta

CRITIC = {"cond_dim": 3, "mlp_dims": [16, 16]}
TERMS = ("pg_loss", "v_loss", "clipfrac", "approx_kl", "ratio", "bc_loss")
LOSS_CASES = [n for n in cases("ppo_loss") if Case("ppo_loss", n).meta["kind"] == "loss"]

def _agent(case: Case, backend: str) -> tuple[object, dict[str, np.ndarray]]:
    m, o = case.meta, case.meta["options"]
    settings = ppo_settings(vf_coef=m["vf_coef"], ent_coef=m["ent_coef"], clip_ploss_coef=m["clip_ploss_coef"],
                            clip_vloss_coef=o["clip_vloss_coef"], norm_adv=o["norm_adv"],
                            clip_advantage_lower_quantile=o["clip_advantage_lower_quantile"],
                            clip_advantage_upper_quantile=o["clip_advantage_upper_quantile"])
    d = dppo_settings(m, gamma_denoising=m["gamma_denoising"], clip_ploss_coef_base=m["clip_ploss_coef_base"],
                      clip_ploss_coef_rate=m["clip_ploss_coef_rate"], reward_horizon=m["reward_horizon"],
                      use_bc_loss=o["use_bc_loss"], bc_loss_coeff=m["bc_loss_coeff"])
    params = with_eta(Case("ppo_loss", m["weights"]).params(), d.eta)
    batch = dict(Case("ppo_loss", m["batch"]).inp)
    if not o["use_bc_loss"]:
        batch.pop("bc_noise")
    if backend == "torch":
        from core_torch.algorithms.ppo_diffusion import PPODiffusionAgent
    else:
        from core_tf.algorithms.ppo_diffusion import PPODiffusionAgent
    agent = PPODiffusionAgent(diffusion_config(m["diffusion"]), critic_config(CRITIC), settings, d, params)
    return agent, batch


def _total(terms: dict, m: dict) -> object:
    loss = terms["pg_loss"] + m["ent_coef"] * terms["entropy_loss"] + m["vf_coef"] * terms["v_loss"]
    if "bc_loss" in terms:
        loss = loss + m["bc_loss_coeff"] * terms["bc_loss"]
    return loss


def our_terms(case: Case, backend: str) -> dict[str, np.ndarray]:
    """Loss terms, ratio mean and gradients of the total loss w.r.t. actor_ft.* and critic.*."""
    agent, batch = _agent(case, backend)
    if backend == "torch":
        import torch

        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        terms = agent.loss_terms(b)
        loss = _total(terms, case.meta)
        named = agent.actor_named + agent.critic_named
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        with torch.no_grad():
            new = agent._mean_logprob(agent.model.logprobs(b["obs"], b["chains"]))
            ratio = (new - agent._mean_logprob(b["logprobs"])).exp().mean()
        out = {k: v.detach().numpy() for k, v in terms.items()}
    else:
        import tensorflow as tf

        b = {k: tf.constant(v) for k, v in batch.items()}
        named = agent.actor_named + agent.critic_named
        with tf.GradientTape() as tape:
            terms = agent.loss_terms(b)
            loss = _total(terms, case.meta)
        grads = tape.gradient(loss, [v for _, v in named])
        new = agent._mean_logprob(agent.model.logprobs(b["obs"], b["chains"]))
        ratio = tf.reduce_mean(tf.exp(new - agent._mean_logprob(b["logprobs"])))
        out = {k: v.numpy() for k, v in terms.items()}
    out["ratio"] = _np(ratio)
    out["loss"] = _np(loss)
    out.setdefault("bc_loss", np.float32(0.0))
    for (n, _), g in zip(named, grads):
        out[f"grad/{n}"] = _np(g)
    return out


def _np(x: object) -> np.ndarray:
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


_CACHE: dict[tuple[str, str], dict] = {}


def _terms(name: str, backend: str) -> tuple[Case, dict]:
    if (name, backend) not in _CACHE:
        case = Case("ppo_loss", name)
        _CACHE[(name, backend)] = our_terms(case, backend)
    return Case("ppo_loss", name), _CACHE[(name, backend)]


def assert_terms_match_upstream(case: Case, out: dict[str, np.ndarray], backend: str) -> None:
    """Every loss term; pg_loss on the scale of the advantages the loss used (shared/tolerances.py)."""
    advantages = Case("ppo_loss", case.meta["batch"]).inp["advantages"]
    for key in TERMS:
        assert_matches_upstream(out[key], case, key, backend, advantages, case.meta["options"]["norm_adv"])


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", LOSS_CASES)
def test_ppo_loss_terms_match_upstream(name: str, backend: str) -> None:
    assert_terms_match_upstream(*_terms(name, backend), backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", LOSS_CASES)
def test_ppo_gradients_match_upstream(name: str, backend: str) -> None:
    case, out = _terms(name, backend)
    for prefix in ("grad/actor_ft.", "grad/critic."):
        assert_gradient_matches_upstream(out, case, prefix, backend)


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", ["ddpm_norm1_q010_vclip0_bc0", "ddim_eta_fixed"])
def test_ppo_entropy_term_matches_upstream(name: str, backend: str) -> None:
    case, out = _terms(name, backend)
    assert_matches_upstream(out["entropy_loss"], case, "entropy_loss", backend)
