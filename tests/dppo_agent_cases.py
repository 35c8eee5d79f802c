"""Behaviour every DPPO twin must show on its own; tests/torch and tests/tf run these per backend."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

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
