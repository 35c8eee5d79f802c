"""Behaviour every DDPO twin must show on its own; tests/torch and tests/tf run these per backend."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from dppo.training import ddpo
from shared.precision import as_compute
from shared.settings.ddpo import load_ddpo_settings

SMALL = ["model.hidden_dim=24", "model.time_dim=6", "model.denoising_steps=40", "sample.ddim_steps=8"]


def _perturbed_iskl(backend: str, estimator: str) -> tuple[Any, Any, OrderedDict]:
    """An ISKL agent whose policy is its reference with every weight moved by 30% of its tensor's spread."""
    cfg = load_ddpo_settings("configs/ddpo/digits_compress_iskl.yaml",
                             [*SMALL, f"train.kl_estimator={estimator}", "train.kl_coef=1.0",
                              "train.learning_rate=1e-3"])
    ref = ddpo.initial_params(cfg.model, 0)
    rng = np.random.default_rng(1)
    policy = OrderedDict((k, as_compute(v + 0.3 * v.std() * rng.standard_normal(v.shape))) for k, v in ref.items())
    return cfg, ddpo.make_agent(cfg, backend, policy, ref), ref


def _kl_only_iterations(cfg: Any, agent: Any, iterations: int) -> list[float]:
    """On-policy chains each iteration, two updates with zero advantages (the KL term alone moves the policy);
    the KL term before each iteration's first update."""
    kls = []
    for k in range(1, iterations + 1):
        labels, noise = ddpo.iteration_draws(cfg, k)
        smp = agent.sample(labels, as_compute(noise))
        batch = {"chains": smp["chains"], "labels": labels, "old_logprobs": smp["logprobs"],
                 "advantages": as_compute(np.zeros(len(labels)))}
        kls.append(agent.train_step(batch)["kl"])
        agent.train_step(batch)
    return kls


def kl_only_updates_bring_the_policy_back_to_the_reference(backend: str) -> None:
    """With the Gaussian KL of each step, updates with the policy-gradient term off shrink the KL to the frozen
    reference (docs/evidence/ddpo.md: on the pre-trained denoiser the report's chain estimate grows it)."""
    cfg, agent, _ = _perturbed_iskl(backend, "gaussian")
    kls = _kl_only_iterations(cfg, agent, 15)
    assert kls[0] > 0.01  # the perturbation is seen
    assert max(kls[-3:]) < 0.2 * kls[0], kls


def reference_never_changes(backend: str, weights: Callable[[Any], OrderedDict]) -> None:
    """ISKL's reference model is frozen: updates of either KL estimator leave every reference weight as it was."""
    for estimator in ("chain", "gaussian"):
        cfg, agent, ref = _perturbed_iskl(backend, estimator)
        _kl_only_iterations(cfg, agent, 1)
        after = weights(agent.ref)
        assert list(after) == list(ref)
        for name, value in ref.items():
            np.testing.assert_array_equal(after[name], as_compute(value), err_msg=f"{estimator}: {name} moved")
