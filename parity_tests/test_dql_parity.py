"""DQL twins: the double-Q critic loss on TD targets, the actor loss through the differentiable sampling
chain (either Q head) with every gradient, and two iterations of minibatch updates on one replay buffer
(a warm-up one that trains the critic only, then critic, actor and target updates), judged in float32 and
float64 by the one rule. The final clamp of the training chain, actor gradient clipping and weight decay
are on, so their code paths are judged too."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent
from dppo.algorithms.dql import minibatch
from dppo.algorithms.replay import replay_update
from dppo.parity.report import probe_quantities, twin_report
from parity_tests.gate import assert_twins_agree
from shared.algorithms.offpolicy import TransitionBuffer
from shared.precision import as_compute
from shared.settings import load_settings
from shared.settings.dql import DQLConfig

DQL_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_dql_diffusion_mlp.yaml"
SMALL_DQL = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
             "denoising_steps=3", "train.batch_size=6", "train.replay_ratio=2", "env.n_envs=3", "train.n_steps=4",
             "train.n_critic_warmup_itr=1", "train.max_grad_norm=0.05", "train.actor_weight_decay=0.01",
             "train.critic_weight_decay=0.01", "model.final_action_clip_value=1.0", "train.target_ema_rate=0.3"]


def _buffer() -> TransitionBuffer:
    rng = np.random.default_rng(5)
    S, N = 5, 3
    buffer = TransitionBuffer(100)
    buffer.extend(obs=rng.uniform(-1, 1, (S, N, 1, 11)), next_obs=rng.uniform(-1, 1, (S, N, 1, 11)),
                  actions=rng.uniform(-1, 1, (S, N, 4, 3)), rewards=rng.normal(0, 0.05, (S, N)),
                  terminated=rng.random((S, N)) < 0.3)
    return buffer


def _loss_probes(twins: dict[str, Any], batch: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any]]:
    """The critic loss (targets: the batch's rewards) and the actor loss with each Q head, as probes (the actor
    loss's on the policy network, the only parameters its step moves)."""
    import core_tf.algorithms.dql_diffusion as tfd
    import core_torch.algorithms.dql_diffusion as ptd
    from core_tf.runtime.probe import probe as tf_probe
    from core_torch.runtime.probe import probe as torch_probe

    out: dict[str, list[Any]] = {"critic": [], "actor_q1": [], "actor_q2": []}
    actor_in = {k: batch[k] for k in ("obs", "chain_noise", "t", "noise")}
    for backend, run, mod in (("torch", torch_probe, ptd), ("tf", tf_probe, tfd)):
        agent = twins[backend]
        for head, flag in (("actor_q1", 1.0), ("actor_q2", 0.0)):
            head_flag = as_compute(np.array(flag, np.float32))
            out[head].append(run(agent.model.network, lambda obs, chain_noise, t, noise, a=agent, f=mod.actor_loss,
                                 h=head_flag: f(a.model, a.critic, obs, chain_noise, t, noise, h, a.settings),
                                 actor_in))
        # last: the actor probes' backward passes reach the critic too (torch probes hold views of .grad)
        out["critic"].append(run(agent.critic, lambda obs, actions, rewards, c=agent.critic, f=mod.critic_loss:
                                 f(c, obs, actions, rewards),
                                 {k: batch[k] for k in ("obs", "actions", "rewards")}))
    return {k: (v[0], v[1]) for k, v in out.items()}


def test_dql_losses_gradients_and_two_iterations_of_updates_agree():
    seen: dict[str, Any] = {}

    def measure():
        cfg = load_settings(DQL_CONFIG, SMALL_DQL, ("finetune",))
        assert isinstance(cfg, DQLConfig)
        twins = {b: make_agent(cfg, b) for b in ("torch", "tf")}
        q = {}
        for name, probes in _loss_probes(twins, minibatch(_buffer(), cfg.dql, 7, 0, 0)).items():
            q.update(probe_quantities(f"{name}_loss", *probes))
        logs, groups = {}, {}
        for backend, agent in twins.items():
            buffer = _buffer()
            logs[backend] = [replay_update(agent, buffer, cfg.dql, seed=3, itr=itr, minibatch=minibatch,
                                           algorithm="dql") for itr in (0, 1)]
            groups[backend] = agent.state_groups()
        for itr in (0, 1):
            q.update({(f"update itr {itr}", k): (v, logs["tf"][itr][k]) for k, v in logs["torch"][itr].items()})
        for group in ("model", "actor_optimizer", "critic_optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, groups=groups, probes=q)
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s, groups = seen["cfg"].dql, seen["groups"]["torch"]
    assert s.minibatches == 4
    assert int(groups["critic_optimizer"]["step"]) == 2 * s.minibatches  # both iterations train the critic
    assert int(groups["actor_optimizer"]["step"]) == s.minibatches  # the warm-up iteration does not step the actor
    model = groups["model"]
    assert all(not np.array_equal(model[k], model[k.replace("critic.", "critic_target.", 1)])
               for k in model if k.startswith("critic."))  # the target trails the critic
