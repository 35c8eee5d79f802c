"""Behaviour every DPPO twin must show on its own; tests/torch and tests/tf run these per backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from dppo.algorithms.ppo import evaluate_in_chunks
from tests.small_dppo import DDIM, buffer, inputs, small_agent


def deterministic_ddim_ignores_eta(backend: str) -> None:
    """Upstream: deterministic DDIM sets eta = 0 in the mean as well as the std."""
    outs = []
    for eta in ("model.eta={base_eta: 0.0, min_eta: 0.0, max_eta: 1.0}",
                "model.eta={base_eta: 1.0, min_eta: 0.1, max_eta: 1.0}"):
        cfg, agent = small_agent(backend, [*DDIM, eta, "seed=3", "model.denoised_clip_value=null"])
        obs, noise = inputs(cfg, 6, 0)
        outs.append(agent.act(obs, noise, deterministic=True)["chains"])  # (B, K+1, Ta, Da)
    assert np.abs(outs[0][:, 1:-1] - outs[0][:, :1]).max() > 1e-3  # the chain moves before its clipped end
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-6)


def quantile_clip_without_norm_adv(backend: str, loss_terms: Callable[[Any, dict], dict[str, float]]) -> None:
    """Advantages are clipped to their quantiles even with norm_adv off: with both quantiles at 0.5
    every advantage becomes the median, so the loss equals that of a constant-median batch."""
    cfg, agent = small_agent(backend, ["model.norm_adv=false", "model.clip_advantage_lower_quantile=0.5",
                                       "model.clip_advantage_upper_quantile=0.5"])
    batch = buffer(cfg, agent, 9, seed=4)
    batch["logprobs"] = batch["logprobs"] + np.random.default_rng(1).normal(0, 0.05, batch["logprobs"].shape).astype(
        np.float32)
    clipped = loss_terms(agent, batch)["pg_loss"]
    agent.settings = dataclasses.replace(agent.settings, clip_advantage_lower_quantile=0.0,
                                         clip_advantage_upper_quantile=1.0)
    median = {**batch, "advantages": np.full_like(batch["advantages"], np.median(batch["advantages"]))}
    unclipped = loss_terms(agent, batch)["pg_loss"]
    assert abs(unclipped - clipped) > 1e-4  # the clip changed something
    np.testing.assert_allclose(clipped, loss_terms(agent, median)["pg_loss"], rtol=1e-5)


STATE_ETA = ["model.eta={_target_: model.diffusion.eta.EtaStateAction, mlp_dims: [8], gain: 1.0}",
             "model.learn_eta=true", "train.eta_lr=1e-2", "train.eta_update_interval=2",
             "train.eta_lr_scheduler={first_cycle_steps: 10, min_lr: 1e-3, warmup_steps: 0}"]


def in_graph_eta_matches_fixed_tables(backend: str) -> None:
    """A fixed eta through the in-graph sigma gives what the precomputed tables give."""
    cfg, agent = small_agent(backend, [*DDIM, "model.eta={base_eta: 0.7, min_eta: 0.1, max_eta: 1.0}"])
    obs, noise = inputs(cfg, 5, 2)
    fast = {det: agent.act(obs, noise, det) for det in (True, False)}
    lp_fast = agent.evaluate(obs, fast[False])[1]
    agent.model.in_graph_eta = True
    if hasattr(agent, "_k_tables"):
        agent._k_tables()  # TF: retrace
    for det in (True, False):
        np.testing.assert_allclose(agent.act(obs, noise, det)["chains"], fast[det]["chains"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(agent.evaluate(obs, fast[False])[1], lp_fast, rtol=0, atol=1e-4)


def eps_clip_changes_the_chain(backend: str) -> None:
    """model.eps_clip_value clamps DDIM's recomputed epsilon before the mean (upstream p_mean_var)."""
    chains = []
    for extra in ([], ["model.eps_clip_value=0.05"]):
        cfg, agent = small_agent(backend, [*DDIM, "model.eta={base_eta: 1.0}", "seed=1", *extra])
        obs, noise = inputs(cfg, 4, 0)
        chains.append(agent.act(obs, noise, False)["chains"])
    assert np.abs(chains[0] - chains[1]).max() > 1e-3


def eta_optimizer_steps_on_interval(backend: str, params: Callable[[Any], dict[str, np.ndarray]]) -> None:
    """A learned state-action eta moves on minibatches 0, 2, ... (eta_update_interval=2), not on 1, not in warm-up;
    its optimizer state is in the checkpoint groups; the entropy term is -mean(eta)."""
    cfg, agent = small_agent(backend, [*DDIM, *STATE_ETA])
    batch = buffer(cfg, agent, 12, seed=5)
    before = params(agent)
    agent.update(batch, update_actor=False, minibatch=0)
    assert all(np.array_equal(before[k], v) for k, v in params(agent).items())
    agent.update(batch, update_actor=True, minibatch=1)
    assert all(np.array_equal(before[k], v) for k, v in params(agent).items())
    logs = agent.update(batch, update_actor=True, minibatch=2)
    assert any(not np.array_equal(before[k], v) for k, v in params(agent).items())
    assert int(agent.state_groups()["eta_optimizer"]["step"]) == 1
    assert -2.0 <= logs["entropy_loss"] <= -1e-3


def annealing_shrinks_k_and_resumes(backend: str) -> None:
    """ft_denoising_steps_d/_t: every t-th iteration K -= d and the base actor becomes actor_ft; K, the iteration
    count and the scheduled std floor come back from the checkpoint groups."""
    extra = ["model.ft_denoising_steps_d=1", "model.ft_denoising_steps_t=2",
             "model.min_sampling_denoising_std={first_cycle_steps: 4, max_lr: 0.3, min_lr: 0.05, warmup_steps: 1}"]
    cfg, agent = small_agent(backend, extra)
    obs, noise = inputs(cfg, 6, 0)
    batch = buffer(cfg, agent, 12, seed=6)
    agent.update(batch, update_actor=True)
    assert agent.ft_denoising_steps == 3 and agent.min_sampling_std == 0.05
    agent.end_iteration(True)
    assert agent.ft_denoising_steps == 3 and abs(agent.min_sampling_std - 0.3) < 1e-12
    agent.end_iteration(True)
    assert agent.ft_denoising_steps == 2
    groups = agent.state_groups()
    model = groups["model"]
    for name, value in model.items():
        if name.startswith("actor."):
            np.testing.assert_array_equal(value, model["actor_ft." + name[len("actor."):]])
    sample = agent.act(obs, noise, False)
    assert sample["chains"].shape == (6, 3, 4, 3)
    values, logprobs = agent.evaluate(obs, sample)
    assert logprobs.shape == (6, 2, 4, 3)
    batch = buffer(cfg, agent, 12, seed=7)
    assert np.isfinite(agent.update(batch, update_actor=True)["pg_loss"])
    _, fresh = small_agent(backend, extra)
    fresh.load_groups(groups, 2, 2)
    assert fresh.ft_denoising_steps == 2 and fresh.min_sampling_std == agent.min_sampling_std
    np.testing.assert_allclose(fresh.act(obs, noise, False)["chains"], sample["chains"], rtol=0, atol=1e-6)


def chunked_evaluate_matches(backend: str) -> None:
    cfg, agent = small_agent(backend, [*DDIM, *STATE_ETA])
    obs, noise = inputs(cfg, 10, 3)
    sample = agent.act(obs, noise, False)
    whole = agent.evaluate(obs, sample)
    for got, want in zip(evaluate_in_chunks(agent, obs, sample, 4), whole):  # the driver's chunked scoring
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
