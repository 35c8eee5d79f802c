"""Exact-likelihood DPPO twins: one set of weights (actor_ft perturbed away from the base actor, so both
networks and the ft/base switch of the ODE are seen) and the same probes into both; the log-likelihoods,
the PPO loss terms with every input and parameter gradient (through the Euler steps and the Hutchinson
divergence's second derivative), and two AdamW updates, judged in float32 and float64 by the one rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import initial_params, make_agent, noise_shape
from dppo.parity.report import probe_quantities, twin_report
from parity_tests.gate import assert_twins_agree
from shared.diffusion.exact_likelihood import ProbeSource
from shared.precision import as_compute
from shared.settings import load_settings

EXACT_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_ppo_exact_diffusion_mlp.yaml"
# 5 DDPM steps and 5 Euler steps (t = 1e-4, 0.2001, ... -> timesteps 0..4; actor_ft at k <= 2); value
# clipping and gradient clipping on, so their branches run too
SMALL = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
         "denoising_steps=5", "ft_denoising_steps=2", "model.sde_step_size=0.2", "env.n_envs=3", "train.n_steps=2",
         "train.batch_size=6", "model.clip_vloss_coef=0.2", "train.max_grad_norm=0.05"]
B = 6


def _loss_probes(agents: dict[str, Any], data: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """pg_loss + v_loss / 2 through each twin's loss_terms: output, input and trainable parameters' gradients."""
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.runtime.probe import probe as torch_probe

    out = []
    for backend, run in (("torch", torch_probe), ("tf", tf_probe)):
        agent = agents[backend]

        def loss(a=agent, **b):
            terms = a.loss_terms(b)
            return terms["pg_loss"] + 0.5 * terms["v_loss"]

        probe = run(agent.model, loss, data)
        # the frozen base actor: torch computes no gradient for it, TF (no requires_grad) one nothing uses
        probe.param_grads = {n: g for n, g in probe.param_grads.items() if not n.startswith("actor.")}
        out.append(probe)
    return out[0], out[1]


def test_exact_likelihoods_ppo_loss_gradients_and_updates_agree():
    seen: dict[str, Any] = {}

    def measure():
        cfg = load_settings(EXACT_CONFIG, SMALL, ("finetune",))
        assert cfg.is_exact
        rng = np.random.default_rng(11)
        init = initial_params(cfg)
        for k in [k for k in init if k.startswith("actor_ft.")]:
            init[k] = (init[k] + 0.05 * rng.standard_normal(init[k].shape)).astype(np.float32)
        agents = {b: make_agent(cfg, b, init) for b in ("torch", "tf")}
        f32 = np.float32
        obs = as_compute(rng.uniform(-1, 1, (B, cfg.cond_steps, cfg.obs_dim)).astype(f32))
        noise = as_compute(rng.standard_normal(noise_shape(cfg, B)).astype(f32))
        actions = agents["torch"].act(obs, noise, deterministic=False)["actions"]  # DPPO's sampler, judged there
        q: dict = {}
        scored = {b: a.evaluate(obs, {"actions": actions}) for b, a in agents.items()}
        q[("exact/evaluate", "values")] = (scored["torch"][0], scored["tf"][0])
        q[("exact/evaluate", "log-likelihood (bits/dim)")] = (scored["torch"][1], scored["tf"][1])
        data = {"obs": obs, "actions": actions, "values": scored["torch"][0],
                "logprobs": scored["torch"][1] + as_compute(rng.normal(0, 0.01, B).astype(f32)),
                "advantages": as_compute(rng.standard_normal(B).astype(f32)),
                "returns": as_compute(rng.standard_normal(B).astype(f32))}
        probes = as_compute(ProbeSource(2, cfg.horizon_steps, cfg.action_dim, "Rademacher").draw(1, B))
        loss_probes = _loss_probes(agents, {**data, "probes": probes})
        q.update(probe_quantities("exact/loss", *loss_probes))
        for i in range(2):
            terms = {b: a.update(data, update_actor=True) for b, a in agents.items()}
            for k in terms["torch"]:
                q[("exact/update", f"{k} update {i}")] = (terms["torch"][k], terms["tf"][k])
        groups = {b: a.state_groups() for b, a in agents.items()}
        for group in ("model", "actor_optimizer", "critic_optimizer"):
            for name, value in groups["torch"][group].items():
                q[(f"exact/{group}", name)] = (value, groups["tf"][group][name])
        seen.update(terms=terms, probe=loss_probes[0], init=init,
                    model=groups["torch"]["model"])
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    # the checks have teeth: some ratios clipped and some not, every actor_ft tensor got a gradient, and
    # the update moved actor_ft but never the frozen base actor
    assert 0.0 < seen["terms"]["torch"]["clipfrac"] < 1.0
    assert all(np.abs(g).max() > 0 for n, g in seen["probe"].param_grads.items() if n.startswith("actor_ft."))
    for name, value in seen["model"].items():
        moved = not np.array_equal(value, seen["init"][name])
        assert moved == name.startswith(("actor_ft.", "critic.")), name
