"""IDQL twins: the executed chunks of training's expectile-weighted draw among scored candidates, the V,
Q and denoising losses with every gradient, and a full iteration of minibatch updates on a replay buffer
(V step, Q step, Polyak target, actor step with clipping and weight decay; the same rows, timesteps and
noise), judged in float32 and float64 by the one rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import torch

from dppo.algorithms.agents import initial_params, make_agent, noise_shape
from dppo.algorithms.idql import idql_minibatch
from dppo.algorithms.replay import replay_update
from dppo.parity.report import probe_quantities, twin_report
from parity_tests.gate import assert_twins_agree
from shared.algorithms.offpolicy import TransitionBuffer
from shared.precision import as_compute
from shared.settings import load_settings
from shared.settings.idql import IDQLConfig

IDQL_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_idql_diffusion_mlp.yaml"
SMALL_IDQL = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic_q.mlp_dims=[16,16]",
              "model.critic_v.mlp_dims=[16,16,16]", "denoising_steps=5", "train.batch_size=6", "train.replay_ratio=1",
              "env.n_envs=3", "train.n_steps=4", "train.eval_sample_num=4", "train.n_critic_warmup_itr=0",
              "train.critic_tau=0.05", "train.max_grad_norm=0.05", "train.actor_weight_decay=0.01",
              "train.critic_weight_decay=0.01"]


def _buffer(cfg: IDQLConfig) -> TransitionBuffer:
    rng = np.random.default_rng(5)
    S, N = 5, cfg.env.n_envs
    buffer = TransitionBuffer(cfg.idql.buffer_transitions)
    buffer.extend(rng.uniform(-1, 1, (S, N, 1, 11)), rng.uniform(-1, 1, (S, N, 1, 11)),
                  rng.uniform(-1, 1, (S, N, 4, 3)), rng.normal(0, 0.05, (S, N)), rng.random((S, N)) < 0.2)
    return buffer


def _loss_probes(twins: dict[str, Any], batch: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any]]:
    from core_tf.algorithms import idql_diffusion as tf_idql
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.algorithms import idql_diffusion as torch_idql
    from core_torch.runtime.probe import probe as torch_probe

    out: dict[str, list[Any]] = {"critic_v": [], "critic_q": [], "actor": []}  # each loss's gradients: its net
    gamma, expectile = twins["torch"].settings.gamma, twins["torch"].settings.expectile
    for backend, run, lib, const in (("torch", torch_probe, torch_idql, torch.from_numpy),
                                     ("tf", tf_probe, tf_idql, tf.constant)):
        a, m = twins[backend], twins[backend].model
        actions, next_obs = const(batch["actions"]), const(batch["next_obs"])  # no gradient reaches them
        out["critic_v"].append(run(a.critic_v, lambda obs, a=a, f=lib.value_loss, x=actions: f(
            a.critic_v, a.critic_q_target, obs, x, expectile), {"obs": batch["obs"]}))
        out["critic_q"].append(run(a.critic_q, lambda obs, actions, rewards, terminated, a=a, f=lib.q_loss,
                                   y=next_obs: f(a.critic_q, a.critic_v, obs, y, actions, rewards, terminated, gamma),
                                   {k: batch[k] for k in ("obs", "actions", "rewards", "terminated")}))
        out["actor"].append(run(m, lambda obs, actions, t, noise, m=m: m.loss(actions, obs, t, noise),
                                {k: batch[k] for k in ("obs", "actions", "t", "noise")}))
    return {k: (v[0], v[1]) for k, v in out.items()}


def test_idql_acting_losses_gradients_and_an_iteration_of_updates_agree():
    seen: dict[str, Any] = {}

    def measure():
        cfg = load_settings(IDQL_CONFIG, SMALL_IDQL, ("finetune",))
        assert isinstance(cfg, IDQLConfig)
        twins = {b: make_agent(cfg, b) for b in ("torch", "tf")}
        rng = np.random.default_rng(3)
        obs = as_compute(rng.uniform(-1, 1, (3, 1, 11)).astype(np.float32))
        noise = as_compute(rng.standard_normal(noise_shape(cfg, 3)).astype(np.float32))
        # training's expectile-weighted draw (evaluation's argmax is judged against upstream in tests/golden)
        acts = {b: a.act(obs, noise, False)["actions"] for b, a in twins.items()}
        q = {("act", "deterministic=False"): (acts["torch"], acts["tf"])}
        buffer = _buffer(cfg)
        for name, (a, b) in _loss_probes(twins, idql_minibatch(buffer, cfg.idql, 0, 1, 0)).items():
            q.update(probe_quantities(f"{name}_loss", a, b))
        logs, groups = {}, {}
        for backend, agent in twins.items():
            logs[backend] = replay_update(agent, buffer, cfg.idql, seed=0, itr=1, minibatch=idql_minibatch,
                                          algorithm="idql")
            groups[backend] = agent.state_groups()
        q.update({("update", k): (logs["torch"][k], logs["tf"][k]) for k in logs["torch"]})
        for group, values in groups["torch"].items():
            for name, value in values.items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, groups=groups["torch"])
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s, groups = seen["cfg"].idql, seen["groups"]
    assert s.minibatches == 2
    for opt in ("actor_optimizer", "critic_q_optimizer", "critic_v_optimizer"):
        assert int(groups[opt]["step"]) == s.minibatches, opt
    model, init = groups["model"], initial_params(seen["cfg"])
    name = "Q1.moduleList.0.linear_1.weight"
    # the target copy started equal to critic_q and trailed it: it moved, by less than the critic did
    assert np.array_equal(init[f"critic_q_target.{name}"], init[f"critic_q.{name}"])
    moved_target = np.abs(model[f"critic_q_target.{name}"] - init[f"critic_q.{name}"]).max()
    assert 0 < moved_target < np.abs(model[f"critic_q.{name}"] - init[f"critic_q.{name}"]).max()
