"""DIPO twins, judged in float32 and float64 by the one rule: the Adam written out on the TF side
against torch.optim.Adam (eps 1e-5, as DIPO's action gradient builds it), the action gradient itself,
and two iterations of DIPO minibatches on one replay buffer (a critic-only warm-up iteration, then
critic, action gradient, actor and Polyak updates of both targets), with the chunks the action
gradient writes back into the buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import torch

from core_tf.algorithms.action_gradient import adam_step
from dppo.algorithms.agents import make_agent
from dppo.algorithms.dipo import dipo_update
from dppo.parity.report import twin_report
from parity_tests.gate import assert_twins_agree
from shared.algorithms.offpolicy import TransitionBuffer
from shared.precision import as_compute
from shared.settings import load_settings
from shared.settings.dipo import DIPOConfig

DIPO_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_dipo_diffusion_mlp.yaml"
SMALL_DIPO = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
              "denoising_steps=4", "train.batch_size=6", "train.replay_ratio=1", "env.n_envs=3", "train.n_steps=4",
              "train.n_critic_warmup_itr=1", "train.action_gradient_steps=3", "train.action_lr=0.05",
              "train.target_ema_rate=0.2", "train.max_grad_norm=0.05", "train.actor_weight_decay=0.01"]


def test_written_out_adam_follows_torch_adam_step_for_step():
    grads = np.random.default_rng(2).normal(0, 1, (6, 4, 5)).astype(np.float32)
    start = np.random.default_rng(3).uniform(-1, 1, (4, 5)).astype(np.float32)

    def measure():
        p_torch = torch.from_numpy(as_compute(start)).requires_grad_(True)
        opt = torch.optim.Adam([p_torch], lr=0.01, eps=1e-5)
        p_tf = tf.constant(as_compute(start))
        m, v = tf.zeros_like(p_tf), tf.zeros_like(p_tf)
        q = {}
        for k, g in enumerate(grads, start=1):
            p_torch.grad = torch.from_numpy(as_compute(g))
            opt.step()
            p_tf, m, v = adam_step(p_tf, tf.constant(as_compute(g)), m, v, k, 0.01)
            q[("adam", f"step {k}")] = (p_torch.detach().numpy().copy(), p_tf.numpy())
        return q

    report = twin_report(measure)
    assert_twins_agree(report)


def _transitions(n_steps: int, n_envs: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {"obs": rng.uniform(-1, 1, (n_steps, n_envs, 1, 11)).astype(np.float32),
            "next_obs": rng.uniform(-1, 1, (n_steps, n_envs, 1, 11)).astype(np.float32),
            "actions": rng.uniform(-0.9, 0.9, (n_steps, n_envs, 4, 3)).astype(np.float32),
            "rewards": rng.normal(0, 0.05, (n_steps, n_envs)), "terminated": rng.random((n_steps, n_envs)) < 0.2}


def test_dipo_action_gradient_and_two_iterations_of_minibatches_agree():
    seen: dict[str, Any] = {}

    def measure():
        cfg = load_settings(DIPO_CONFIG, SMALL_DIPO, ("finetune",))
        assert isinstance(cfg, DIPOConfig)
        twins = {b: make_agent(cfg, b) for b in ("torch", "tf")}
        data = _transitions(cfg.train.n_steps, cfg.env.n_envs)
        obs, actions = (as_compute(data[k].reshape(-1, *data[k].shape[2:])) for k in ("obs", "actions"))
        q = {("action_gradient", "improved"): (
            twins["torch"].improve_actions(torch.from_numpy(obs), torch.from_numpy(actions)).numpy(),
            twins["tf"].improve_actions(tf.constant(obs), tf.constant(actions)).numpy())}
        logs, groups, buffers = {}, {}, {}
        for backend, agent in twins.items():
            buffer = TransitionBuffer(cfg.dipo.buffer_transitions)
            buffer.extend(**{k: v.copy() for k, v in data.items()})  # the buffer may keep views of its input
            logs[backend] = [dipo_update(agent, buffer, cfg.dipo, seed=0, itr=itr) for itr in (0, 1)]
            groups[backend], buffers[backend] = agent.state_groups(), buffer.data["actions"].copy()
        for itr in (0, 1):
            q.update({(f"update {itr}", k): (v, logs["tf"][itr][k]) for k, v in logs["torch"][itr].items()})
        q[("buffer", "actions")] = (buffers["torch"], buffers["tf"])
        for group in ("model", "actor_optimizer", "critic_optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, logs=logs, groups=groups["torch"], buffer=buffers["torch"], start=data["actions"])
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s, logs, groups = seen["cfg"].dipo, seen["logs"]["torch"], seen["groups"]
    assert "actor_loss" not in logs[0] and "actor_loss" in logs[1]  # warm-up, then the actor
    assert int(groups["critic_optimizer"]["step"]) == 2 * s.minibatches == 4
    assert int(groups["actor_optimizer"]["step"]) == s.minibatches
    moved = np.any(seen["buffer"] != seen["start"].reshape(seen["buffer"].shape), axis=(1, 2))
    assert 0 < moved.sum() <= s.minibatches * s.batch_size  # the drawn rows' chunks were rewritten
    model = groups["model"]
    assert not np.array_equal(model["actor_target.time_embedding.1.weight"], model["network.time_embedding.1.weight"])
