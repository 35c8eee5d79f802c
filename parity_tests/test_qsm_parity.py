"""QSM twins, judged in float32 and float64 by the one rule: the TD critic loss and the Q-score matching
actor loss with every gradient (the critic's action gradient at the noisy chunks is a constant of the
actor loss in both), chunks sampled for exploration and evaluation, and two iterations of minibatch
updates on one replay buffer (a warm-up iteration that leaves the policy alone, then critic, clipped
actor and Polyak target steps with weight decay)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent
from dppo.algorithms.qsm import initial_params, qsm_minibatch
from dppo.algorithms.replay import replay_update
from dppo.parity.report import probe_quantities, twin_report
from parity_tests.gate import assert_twins_agree
from shared.algorithms.offpolicy import TransitionBuffer
from shared.precision import as_compute
from shared.settings import load_settings
from shared.settings.qsm import QSMConfig

QSM_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_qsm_diffusion_mlp.yaml"
SMALL_QSM = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
             "denoising_steps=5", "train.batch_size=6", "train.replay_ratio=2", "env.n_envs=3", "train.n_steps=4",
             "train.n_critic_warmup_itr=1", "train.max_grad_norm=0.05", "train.actor_weight_decay=0.01",
             "train.critic_weight_decay=0.01", "train.critic_tau=0.3"]


def _buffer(n_envs: int) -> TransitionBuffer:
    rng = np.random.default_rng(5)
    S = 5
    buffer = TransitionBuffer(1000)
    buffer.extend(rng.uniform(-1, 1, (S, n_envs, 1, 11)).astype(np.float32),
                  rng.uniform(-1, 1, (S, n_envs, 1, 11)).astype(np.float32),
                  rng.uniform(-1, 1, (S, n_envs, 4, 3)).astype(np.float32), rng.normal(0, 0.05, (S, n_envs)),
                  rng.random((S, n_envs)) < 0.3)
    return buffer


def _loss_probes(twins: dict[str, Any], b: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any]]:
    """Probes of both losses; the critic's next chunks are the torch twin's, constants of the loss."""
    import tensorflow as tf
    import torch

    from core_tf.algorithms import qsm_diffusion as tf_qsm
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.algorithms import qsm_diffusion as torch_qsm
    from core_torch.runtime.probe import probe as torch_probe

    next_actions = twins["torch"].act(b["next_obs"], b["chain_noise"], deterministic=False)["actions"]
    out: dict[str, list[Any]] = {"critic": [], "actor": []}
    for backend, run, mod, const in (("torch", torch_probe, torch_qsm, torch.from_numpy),
                                     ("tf", tf_probe, tf_qsm, tf.constant)):
        a = twins[backend]
        nxt = (const(b["next_obs"]), const(next_actions))

        def critic(obs, actions, rewards, terminated, a=a, mod=mod, nxt=nxt):
            return mod.qsm_critic_loss(a.critic, a.critic_target, obs, actions, *nxt, rewards, terminated,
                                       a.settings.gamma)

        def actor(obs, actions, t, noise, a=a, mod=mod):
            return mod.qsm_actor_loss(a.model, a.critic, obs, actions, t, noise, a.settings.q_grad_coeff)

        out["critic"].append(run(a.critic, critic, {k: b[k] for k in ("obs", "actions", "rewards", "terminated")}))
        out["actor"].append(run(a.model.network, actor, {k: b[k] for k in ("obs", "actions", "t", "noise")}))
    return {k: (v[0], v[1]) for k, v in out.items()}


def _check_actor_loss_leaves_the_critic_alone(twins: dict[str, Any], b: dict[str, np.ndarray]) -> None:
    """No gradient of the actor loss reaches the critic in either twin (upstream detaches dQ/da); the
    policy's parameters all get one."""
    import tensorflow as tf
    import torch

    from core_tf.algorithms.qsm_diffusion import qsm_actor_loss as tf_actor_loss
    from core_torch.algorithms.qsm_diffusion import qsm_actor_loss as torch_actor_loss

    a = twins["torch"]
    loss = torch_actor_loss(a.model, a.critic, *(torch.from_numpy(b[k]) for k in ("obs", "actions", "t", "noise")),
                            10.0)
    grads = torch.autograd.grad(loss, list(a.critic.parameters()) + list(a.model.network.parameters()),
                                allow_unused=True)
    n_critic = len(list(a.critic.parameters()))
    assert all(g is None for g in grads[:n_critic]) and all(g is not None for g in grads[n_critic:])
    a = twins["tf"]
    with tf.GradientTape() as tape:
        loss = tf_actor_loss(a.model, a.critic, *(tf.constant(b[k]) for k in ("obs", "actions", "t", "noise")), 10.0)
    grads = tape.gradient(loss, a.critic_opt.variables + a.actor_opt.variables)
    n_critic = len(a.critic_opt.variables)
    assert all(g is None for g in grads[:n_critic]) and all(g is not None for g in grads[n_critic:])


def test_qsm_losses_gradients_sampling_and_two_iterations_of_updates_agree():
    """Also: the actor loss's critic gradient is a constant (no gradient reaches the critic)."""
    seen: dict[str, Any] = {}

    def measure():
        cfg = load_settings(QSM_CONFIG, SMALL_QSM, ("finetune",))
        assert isinstance(cfg, QSMConfig)
        init = initial_params(cfg)
        # a critic unlike its target, so the target's own numbers are judged too
        init.update((k, v * 0.5) for k, v in init.items() if k.startswith("critic_target."))
        twins = {b: make_agent(cfg, b, init) for b in ("torch", "tf")}
        s, buffer = cfg.qsm, _buffer(cfg.env.n_envs)
        b = qsm_minibatch(buffer, s, seed=3, itr=1, k=0)
        _check_actor_loss_leaves_the_critic_alone(twins, b)
        q = {}
        for det in (False, True):
            acts = {k: a.act(b["obs"], b["chain_noise"], det)["actions"] for k, a in twins.items()}
            q[("act", f"deterministic={det}")] = (acts["torch"], acts["tf"])
        for name, probes in _loss_probes(twins, b).items():
            q.update(probe_quantities(f"{name}_loss", *probes))
        logs, groups = {}, {}
        for backend, agent in twins.items():
            logs[backend] = [replay_update(agent, buffer, s, seed=0, itr=itr, minibatch=qsm_minibatch, algorithm="qsm")
                             for itr in (0, 1)]
            groups[backend] = agent.state_groups()
        for i, (lt, lf) in enumerate(zip(logs["torch"], logs["tf"])):
            q.update({("update", f"{k} itr {i}"): (lt[k], lf[k]) for k in lt})
        for group in ("model", "actor_optimizer", "critic_optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, groups=groups["torch"], init=init, probes=_loss_probes(twins, b))
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s, groups, init = seen["cfg"].qsm, seen["groups"], seen["init"]
    assert s.minibatches == 4
    assert int(groups["critic_optimizer"]["step"]) == 2 * s.minibatches  # both iterations
    assert int(groups["actor_optimizer"]["step"]) == s.minibatches  # the warm-up iteration left the actor alone
    assert all(np.abs(g).max() > 0 for g in seen["probes"]["actor"][0].param_grads.values())
    # the target trailed the critic by Polyak steps: it moved, towards the critic
    name = "Q1.moduleList.0.linear_1.weight"
    tgt, src = groups["model"][f"critic_target.{name}"], groups["model"][f"critic.{name}"]
    start = as_compute(init[f"critic_target.{name}"])
    assert np.abs(tgt - start).max() > 0 and np.abs(tgt - src).max() < np.abs(start - src).max()
