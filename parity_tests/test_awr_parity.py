"""AWR twins: values, the critic loss and the advantage-weighted denoising loss with every gradient,
and one full AWR update on a replay buffer (critic then actor minibatches, the same rows, timesteps
and noise), judged in float32 and float64 by the one rule. Upstream's own settings (the all-pairs
critic loss, critic rows among the first buffer steps) are judged by `dppo parity` in
tests/cli/test_awr_cli.py; here the per-row variants, actor gradient clipping and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from dppo.algorithms.agents import make_agent
from dppo.algorithms.awr import awr_inputs, awr_loss_probes, awr_update
from dppo.parity.report import probe_quantities, twin_report
from parity_tests.gate import assert_twins_agree
from shared.algorithms.awr import ReplayBuffer
from shared.settings import load_settings
from shared.settings.awr import AWRConfig

AWR_CONFIG = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_awr_diffusion_mlp.yaml"
SMALL_AWR = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
             "denoising_steps=5", "train.batch_size=6", "train.replay_ratio=2", "train.critic_update_ratio=2",
             "env.n_envs=3", "train.n_steps=4", "train.critic_loss_all_pairs=false",
             "train.critic_rows_first_steps=false", "train.max_grad_norm=0.05", "train.actor_weight_decay=0.01",
             "train.critic_weight_decay=0.01"]


def test_awr_losses_gradients_and_a_full_update_agree():
    seen: dict[str, Any] = {}

    def measure():
        cfg = load_settings(AWR_CONFIG, SMALL_AWR, ("finetune",))
        assert isinstance(cfg, AWRConfig)
        twins = {b: make_agent(cfg, b) for b in ("torch", "tf")}
        data = awr_inputs(cfg, twins["torch"], 10, seed=4)
        q = {("values", "V(s)"): (twins["torch"].values(data["obs"]), twins["tf"].values(data["obs"]))}
        probes = awr_loss_probes(twins, data)
        for name, (a, b) in probes.items():
            q.update(probe_quantities(f"{name}_loss", a, b))
        rng = np.random.default_rng(5)
        S, N = 5, cfg.env.n_envs
        steps = (rng.uniform(-1, 1, (S, N, 1, 11)).astype(np.float32), rng.uniform(-1, 1, (S, N, 4, 3)).astype(
            np.float32), rng.normal(0, 0.05, (S, N)), rng.random((S, N)) < 0.2)
        logs, groups = {}, {}
        for backend, agent in twins.items():
            buffer = ReplayBuffer(cfg.awr.buffer_size)
            buffer.extend(*steps)
            logs[backend] = awr_update(agent, buffer, cfg.awr, cfg.diffusion.denoising_steps, seed=0, itr=1)
            groups[backend] = agent.state_groups()
        q.update({("update", k): (logs["torch"][k], logs["tf"][k]) for k in logs["torch"]})
        for group in ("model", "actor_optimizer", "critic_optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        seen.update(cfg=cfg, groups=groups, probes=probes)
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    s, groups = seen["cfg"].awr, seen["groups"]["torch"]
    assert int(groups["actor_optimizer"]["step"]) == s.actor_batches == 4
    assert int(groups["critic_optimizer"]["step"]) == s.actor_batches // s.critic_update_ratio
    torch_critic = seen["probes"]["critic"][0]
    assert all(np.abs(g).max() > 0 for g in torch_critic.param_grads.values())
