"""DPPO and Gaussian PPO twins: sampling chains, log-probabilities, every PPO loss term and
its gradients, and one full PPO update (all epochs and minibatches, same shuffling)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
import torch
from hypothesis import given
from hypothesis import strategies as st

from dppo.algorithms.agents import noise_shape
from dppo.algorithms.ppo import ppo_update
from dppo.parity.report import twin_report
from parity_tests.finetune_twins import (
    DPPO_CONFIG,
    GAUSSIAN_CONFIG,
    SMALL_DPPO,
    SMALL_GAUSSIAN,
    agents,
    rollout_buffer,
)
from parity_tests.gate import assert_twins_agree
from parity_tests.strategies import examples
from shared.precision import as_compute
from shared.tolerances import operand_scale

dppo_variants = st.fixed_dictionaries({
    "steps": st.integers(3, 10), "ft": st.integers(1, 3), "ddim": st.booleans(), "act_steps": st.integers(1, 4),
    "activation": st.sampled_from(["ReLU", "Mish", "ELU"]), "seed": st.integers(0, 1000),
    "eta": st.sampled_from([None, 0.5, 1.0]),
})


def _dppo_overrides(v: dict) -> list[str]:
    out = [*SMALL_DPPO, f"denoising_steps={v['steps']}", f"ft_denoising_steps={v['ft']}",
           f"act_steps={v['act_steps']}", f"model.actor.activation_type={v['activation']}", f"seed={v['seed']}"]
    if v["ddim"]:
        out += ["model.use_ddim=true", f"model.ddim_steps={v['steps'] - 1}"]
        if v["eta"] is not None:
            out.append(f"model.eta={{base_eta: {v['eta']}, min_eta: 0.1, max_eta: 1.0}}")
    return out


@examples(1 / 2, 4)
@given(v=dppo_variants)
def test_dppo_chains_and_logprobs_agree_under_injected_noise(v):
    rng = np.random.default_rng(v["seed"])
    n = 5
    obs32 = rng.uniform(-1, 1, (n, 1, 11)).astype(np.float32)
    steps = v["steps"] - 1 if v["ddim"] else v["steps"]
    noise32 = rng.standard_normal((steps + 1, n, 4, 3)).astype(np.float32)

    def measure():
        _, twins = agents(DPPO_CONFIG, _dppo_overrides(v))
        obs, noise = as_compute(obs32), as_compute(noise32)
        q = {}
        for det in (True, False):
            a, b = twins["torch"].act(obs, noise, det), twins["tf"].act(obs, noise, det)
            assert a["chains"].shape == (n, v["ft"] + 1, 4, 3)
            np.testing.assert_array_equal(a["chains"][:, -1], a["actions"])
            q[("chain", f"deterministic={det}")] = (a["chains"], b["chains"])
            lp_a = twins["torch"].evaluate(obs, a)[1]
            lp_b = twins["tf"].evaluate(obs, a)[1]
            assert lp_a.shape == (n, v["ft"], 4, 3)
            q[("logprobs", f"deterministic={det}")] = (lp_a, lp_b)
        return q

    report = twin_report(measure)
    assert_twins_agree(report)


def _grads_torch(agent, batch):
    terms = agent.loss_terms({k: torch.from_numpy(v) for k, v in batch.items()})
    s = agent.settings
    loss = terms["pg_loss"] + s.ent_coef * terms["entropy_loss"] + s.vf_coef * terms["v_loss"]
    if "bc_loss" in terms:
        loss = loss + terms.pop("bc_coef") * terms["bc_loss"]
    named = agent.actor_named + agent.critic_named + getattr(agent, "eta_named", [])
    for _, p in named:
        p.grad = None
    loss.backward()
    return ({k: float(v.detach()) for k, v in terms.items()},
            {n: (np.zeros(tuple(p.shape)) if p.grad is None else p.grad.numpy()) for n, p in named})


def _grads_tf(agent, batch):
    named = agent.actor_named + agent.critic_named + getattr(agent, "eta_named", [])
    s = agent.settings
    with tf.GradientTape() as tape:
        terms = agent.loss_terms({k: tf.constant(v) for k, v in batch.items()})
        loss = terms["pg_loss"] + s.ent_coef * terms["entropy_loss"] + s.vf_coef * terms["v_loss"]
        if "bc_loss" in terms:
            loss = loss + terms.pop("bc_coef") * terms["bc_loss"]
    grads = tape.gradient(loss, [v for _, v in named])
    return ({k: float(v) for k, v in terms.items()},
            {n: (np.zeros(tuple(v.shape)) if g is None else g.numpy()) for (n, v), g in zip(named, grads)})


@pytest.mark.parametrize("kind", ["dppo", "dppo_ddim", "dppo_ddim_eta", "dppo_value_clip", "dppo_clip_no_norm",
                                  "dppo_bc", "gaussian"])
def test_every_ppo_loss_term_and_its_gradients_agree(kind):
    overrides = {"dppo": SMALL_DPPO, "dppo_ddim": [*SMALL_DPPO, "model.use_ddim=true", "model.ddim_steps=4"],
                 "dppo_value_clip": [*SMALL_DPPO, "model.clip_vloss_coef=0.2",
                                     "model.clip_advantage_lower_quantile=0.1",
                                     "model.clip_advantage_upper_quantile=0.9"],
                 "dppo_ddim_eta": [*SMALL_DPPO, "model.use_ddim=true", "model.ddim_steps=4",
                                   "model.eta={base_eta: 0.5}"],
                 "dppo_clip_no_norm": [*SMALL_DPPO, "model.norm_adv=false", "model.clip_advantage_lower_quantile=0.2",
                                       "model.clip_advantage_upper_quantile=0.7"],
                 "dppo_bc": [*SMALL_DPPO, "train.use_bc_loss=true", "train.bc_loss_coeff=0.5"],
                 "gaussian": SMALL_GAUSSIAN}[kind]
    seen: dict[str, Any] = {}

    def measure():
        cfg, twins = agents(GAUSSIAN_CONFIG if kind == "gaussian" else DPPO_CONFIG, overrides)
        batch = rollout_buffer(cfg, twins["torch"], 24, seed=1)
        if kind == "dppo_bc":  # the teacher chains' noise, one (S+1, Ta, Da) block per row
            batch["bc_noise"] = as_compute(np.random.default_rng(5).standard_normal((24, 9, 4, 3)).astype(np.float32))
        # make the ratio move away from 1 so the clipping branch is exercised
        batch["logprobs"] = batch["logprobs"] + as_compute(
            np.random.default_rng(2).normal(0, 0.05, batch["logprobs"].shape).astype(np.float32))
        terms_a, grads_a = _grads_torch(twins["torch"], batch)
        terms_b, grads_b = _grads_tf(twins["tf"], batch)
        seen.update(terms=terms_a, grads=grads_a)
        q = {("loss", k): (terms_a[k], terms_b[k], operand_scale(k, batch["advantages"])) for k in terms_a}
        q.update({("grad", name): (g, grads_b[name]) for name, g in grads_a.items()})
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    assert seen["terms"]["clipfrac"] > 0  # the clipped branch was exercised
    assert any(np.abs(g).max() > 0 for n, g in seen["grads"].items() if n.startswith(("actor_ft.", "actor.")))


@pytest.mark.parametrize("kind", ["dppo", "gaussian"])
def test_one_full_ppo_update_gives_the_same_parameters(kind):
    path, overrides = (DPPO_CONFIG, SMALL_DPPO) if kind == "dppo" else (GAUSSIAN_CONFIG, SMALL_GAUSSIAN)
    seen: dict[str, Any] = {}

    def measure():
        cfg, twins = agents(path, [*overrides, "train.target_kl=null"])
        data = rollout_buffer(cfg, twins["torch"], 36, seed=3)
        logs = {b: ppo_update(agent, data, cfg.ppo, seed=0, itr=1) for b, agent in twins.items()}
        q = {("update", k): (logs["torch"][k], logs["tf"][k], operand_scale(k, data["advantages"]))
             for k in logs["torch"]}
        groups = {b: a.state_groups() for b, a in twins.items()}
        for group in ("model", "actor_optimizer", "critic_optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, groups=groups)
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s, groups = seen["cfg"].ppo, seen["groups"]
    assert int(groups["torch"]["actor_optimizer"]["step"]) == s.update_epochs * (36 // s.batch_size)
    if kind == "dppo":  # the frozen base actor did not move
        for name, value in groups["torch"]["model"].items():
            if name.startswith("actor."):
                np.testing.assert_array_equal(value, groups["tf"]["model"][name])


_LEARN_ETA = ["model.learn_eta=true", "train.eta_lr=1e-2",
              "train.eta_lr_scheduler={first_cycle_steps: 10, min_lr: 1e-3, warmup_steps: 0}"]
ETA_VARIANTS = {
    "fixed_eps_clip": ["model.eta={base_eta: 1.0}", "model.eps_clip_value=0.5"],
    "action": ["model.eta={_target_: model.diffusion.eta.EtaAction, base_eta: 0.6}", *_LEARN_ETA],
    "state": ["model.eta={_target_: model.diffusion.eta.EtaState, mlp_dims: [8, 8], gain: 1.0}", *_LEARN_ETA],
    "state_action": ["model.eta={_target_: model.diffusion.eta.EtaStateAction, mlp_dims: [8], gain: 1.0, "
                     "activation_type: Mish}", *_LEARN_ETA],
}


@examples(1 / 3, 3)
@given(kind=st.sampled_from(sorted(ETA_VARIANTS)), seed=st.integers(0, 1000), ent_coef=st.sampled_from([0.0, 0.1]))
def test_ddim_eta_kinds_agree_in_chains_logprobs_losses_and_gradients(kind, seed, ent_coef):
    """In-graph DDIM sigma from a learned / per-dim / per-state eta, and epsilon clipping, in both twins."""
    overrides = [*SMALL_DPPO, "model.use_ddim=true", "model.ddim_steps=5", f"seed={seed}",
                 f"train.ent_coef={ent_coef}", *ETA_VARIANTS[kind]]
    seen: dict[str, Any] = {}

    def measure():
        cfg, twins = agents(DPPO_CONFIG, overrides)
        obs = as_compute(np.random.default_rng(seed).uniform(-1, 1, (6, 1, 11)).astype(np.float32))
        noise = as_compute(np.random.default_rng(seed + 1).standard_normal((6, 6, 4, 3)).astype(np.float32))
        q = {}
        for det in (True, False):
            a, b = twins["torch"].act(obs, noise, det), twins["tf"].act(obs, noise, det)
            q[("chain", f"deterministic={det}")] = (a["chains"], b["chains"])
            q[("logprobs", f"deterministic={det}")] = (twins["torch"].evaluate(obs, a)[1],
                                                       twins["tf"].evaluate(obs, a)[1])
        batch = rollout_buffer(cfg, twins["torch"], 24, seed=seed)
        batch["logprobs"] = batch["logprobs"] + as_compute(
            np.random.default_rng(2).normal(0, 0.05, batch["logprobs"].shape).astype(np.float32))
        terms_a, grads_a = _grads_torch(twins["torch"], batch)
        terms_b, grads_b = _grads_tf(twins["tf"], batch)
        q.update({("loss", k): (terms_a[k], terms_b[k], operand_scale(k, batch["advantages"])) for k in terms_a})
        q.update({("grad", name): (g, grads_b[name]) for name, g in grads_a.items()})
        seen["grads"] = grads_a
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    if kind != "fixed_eps_clip":
        assert any(np.abs(g).max() > 0 for n, g in seen["grads"].items() if n.startswith("eta."))


@examples(1 / 3, 3)
@given(seed=st.integers(0, 2**16), deterministic=st.booleans())
def test_gaussian_actions_agree_stochastic_and_deterministic(seed, deterministic):
    """Deterministic Gaussian actions are upstream's low-noise samples (std 1e-4), in both twins."""
    seen: dict[str, Any] = {}

    def measure():
        cfg, twins = agents(GAUSSIAN_CONFIG, SMALL_GAUSSIAN)
        rng = np.random.default_rng(seed)
        obs = as_compute(rng.uniform(-1, 1, (5, cfg.cond_steps, cfg.obs_dim)).astype(np.float32))
        noise = as_compute(rng.standard_normal(noise_shape(cfg, 5)).astype(np.float32))
        a, b = (twins[k].act(obs, noise, deterministic)["actions"] for k in ("torch", "tf"))
        seen.update(cfg=cfg, twins=twins, obs=obs, noise=noise, a=a)
        return {("act", f"deterministic={deterministic}"): (a, b)}

    report = twin_report(measure)
    assert_twins_agree(report)
    cfg, twins, obs, noise, a = (seen[k] for k in ("cfg", "twins", "obs", "noise", "a"))
    if deterministic:  # a sample around the mean with std 1e-4, not the mean itself
        zero = twins["torch"].act(obs, np.zeros_like(noise), True)["actions"]
        assert 0 < np.abs(a - zero).max() <= 1e-4 * cfg.model.randn_clip_value + 1e-7
