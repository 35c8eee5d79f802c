"""RWR twins: sampled chunks, the reward-weighted denoising loss with every gradient, and one full
RWR update (all epochs and minibatches, the same shuffling, timesteps and noise), judged in float32
and float64 by the one rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent
from dppo.algorithms.rwr import rwr_inputs, rwr_loss_probes, rwr_update
from dppo.parity.report import probe_quantities, twin_report
from parity_tests.gate import assert_twins_agree
from shared.algorithms.rwr import reward_weights
from shared.precision import as_compute
from shared.settings import load_settings
from shared.settings.rwr import RWRConfig

RWR_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_rwr_diffusion_mlp.yaml"
SMALL_RWR = ["base_policy_path=null", "model.network.mlp_dims=[16,16,16]", "denoising_steps=6",
             "train.batch_size=10", "train.update_epochs=2"]
# x0 prediction, clipped gradients, weight decay, a small beta: the branches upstream's own configuration
# (judged by `dppo parity` in tests/cli/test_rwr_cli.py) leaves out
VARIANT = ["model.predict_epsilon=false", "train.max_grad_norm=0.05", "train.weight_decay=0.01", "train.beta=0.5"]


def _agents(overrides: list[str]) -> tuple[RWRConfig, dict[str, Any]]:
    cfg = load_settings(RWR_CONFIG, [*SMALL_RWR, *overrides], ("finetune",))
    assert isinstance(cfg, RWRConfig)
    return cfg, {b: make_agent(cfg, b) for b in ("torch", "tf")}


def test_rwr_chunks_weighted_loss_and_every_gradient_agree():
    seen: dict[str, Any] = {}

    def measure():
        cfg, twins = _agents(VARIANT)
        data = rwr_inputs(cfg, twins["torch"], 12, seed=3)
        q = {}
        for det in (False, True):
            acts = [twins[b].act(data["obs"], as_compute(np.random.default_rng(4).standard_normal(
                (cfg.diffusion.denoising_steps + 1, 12, 4, 3)).astype(np.float32)), det)["actions"]
                for b in ("torch", "tf")]
            q[("act", f"deterministic={det}")] = tuple(acts)
        torch_probe, tf_probe = rwr_loss_probes(twins, data)
        q.update(probe_quantities("loss", torch_probe, tf_probe))
        seen.update(probe=torch_probe, weights=data["weights"], cfg=cfg)
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    weights, s = seen["weights"], seen["cfg"].rwr
    assert weights.max() <= s.max_reward_weight and weights.min() > 0
    # the weights enter the loss linearly: d loss / d w_b = per-row error / B, positive for every row
    assert np.all(seen["probe"].input_grads["weights"] > 0)
    assert all(np.abs(g).max() > 0 for g in seen["probe"].param_grads.values())


def test_one_full_rwr_update_gives_the_same_parameters_and_optimizer_state():
    seen: dict[str, Any] = {}

    def measure():
        cfg, twins = _agents(VARIANT)
        rng = np.random.default_rng(11)
        obs = as_compute(rng.uniform(-1, 1, (25, 1, 11)).astype(np.float32))
        actions = as_compute(rng.uniform(-1, 1, (25, 4, 3)).astype(np.float32))
        weights = as_compute(reward_weights(rng.standard_normal(25), cfg.rwr.beta, cfg.rwr.max_reward_weight))
        data = {"obs": obs, "actions": actions, "weights": weights}
        logs = {b: rwr_update(a, data, cfg.rwr, cfg.diffusion.denoising_steps, seed=0, itr=1)
                for b, a in twins.items()}
        q = {("update", "mean loss"): (logs["torch"]["loss"], logs["tf"]["loss"])}
        groups = {b: a.state_groups() for b, a in twins.items()}
        for group in ("model", "optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, groups=groups)
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s = seen["cfg"].rwr
    assert int(seen["groups"]["torch"]["optimizer"]["step"]) == s.update_epochs * (25 // s.batch_size)
