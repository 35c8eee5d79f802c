"""SAC, RLPD, IBRL and Cal-QL (offline and online) twins: the same config, weights, buffer and draws into both
frameworks, two training iterations of each algorithm's whole update (critic, actor, temperature and target
steps; for RLPD and Cal-QL half of every minibatch from the demonstrations), then acting; every logged loss,
every parameter and optimizer moment and the actions judged in float32 and float64 by the one rule. Weight
decay and a learning-rate warm-up are on, so their code paths are judged too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dppo.algorithms.registry import driver
from dppo.parity.report import twin_report
from parity_tests.gate import assert_twins_agree
from shared.precision import as_compute
from shared.settings import load_settings

UPSTREAM = "tests/fixtures/upstream_cfg/cfg/gym"
SMALL = ["model.actor.mlp_dims=[16,16]", "model.critic.mlp_dims=[16,16]", "train.batch_size=8",
         "train.n_explore_steps=0", "train.actor_weight_decay=0.01", "train.critic_weight_decay=0.01",
         "train.target_ema_rate=0.2", "offline_dataset.max_n_episodes=3"]
WARMUP = ["train.actor_lr_scheduler.warmup_steps=2", "train.critic_lr_scheduler.warmup_steps=2"]
CASES = {
    "sac": (f"{UPSTREAM}/finetune/hopper-v2/sac_mlp.yaml",
            ["model.actor.mlp_dims=[16,16]", "model.critic.mlp_dims=[16,16]", "train.batch_size=8",
             "train.n_explore_steps=0", "train.critic_replay_ratio=8", "train.actor_replay_ratio=4",
             "train.target_ema_rate=0.2"]),
    "rlpd": (f"{UPSTREAM}/finetune/hopper-v2/rlpd_mlp.yaml",
             [*SMALL, *WARMUP, "model.n_critics=3", "train.critic_num_update=2"]),
    "ibrl": (f"{UPSTREAM}/finetune/hopper-v2/ibrl_mlp.yaml",
             [*SMALL, *WARMUP, "model.n_critics=3", "train.critic_num_update=2", "train.update_freq=1"]),
    "calql_offline": (f"{UPSTREAM}/pretrain/hopper-medium-v2/calql_mlp_offline.yaml",
                      [*SMALL, *WARMUP, "train.num_update=2", "train.n_random_actions=3", "model.cql_n_actions=3"]),
    "calql_online": (f"{UPSTREAM}/finetune/hopper-v2/calql_mlp_online.yaml",
                     [*SMALL, *WARMUP, "train.n_random_actions=3", "model.cql_n_actions=3",
                      "train.online_utd_ratio=0.25", "base_policy_path=null"]),
}


def _fill(trainer: Any) -> None:
    """The same 5 steps of 2 envs into the trainer's buffer (with returns-to-go for Cal-QL)."""
    rng = np.random.default_rng(5)
    S, N = 5, 2
    extra = {"returns": rng.normal(0, 1, (S, N))} if "returns" in trainer.buffer.fields or "calql" in \
        trainer.algorithm else {}
    trainer.buffer.extend(obs=rng.uniform(-1, 1, (S, N, 1, 11)), next_obs=rng.uniform(-1, 1, (S, N, 1, 11)),
                          actions=rng.uniform(-1, 1, (S, N, 1, 3)), rewards=rng.normal(0, 1, (S, N)),
                          terminated=rng.random((S, N)) < 0.3, **extra)


@pytest.mark.parametrize("name", list(CASES))
def test_gaussian_off_policy_updates_and_acting_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPPO_DATA_DIR", raising=False)
    path, overrides = CASES[name]
    cfg = load_settings(path, overrides, ("finetune",))
    seen: dict[str, Any] = {}

    def measure():
        q = {}
        logs, groups, acts = {}, {}, {}
        obs = as_compute(np.random.default_rng(3).uniform(-1, 1, (4, 1, 11)).astype(np.float32))
        for backend in ("torch", "tf"):
            trainer = driver(cfg).Trainer(cfg, backend)
            _fill(trainer)
            trainer.data.collected = 8  # Cal-QL online: the steps an iteration collected (x online_utd_ratio updates)
            logs[backend] = []
            for itr in (1, 2):
                logs[backend].append(trainer.update(itr, seed=3))
                trainer.end_iteration(itr)
            groups[backend] = trainer.agent.state_groups()
            draws = np.random.default_rng(4).standard_normal(trainer.noise_shape(len(obs)))
            noise = as_compute(draws.astype(np.float32))
            acts[backend] = {det: trainer.agent.act(obs, noise, det)["actions"] for det in (False, True)}
        for i in range(2):
            assert logs["torch"][i], f"iteration {i + 1} made no update"
            q.update({(f"update itr {i + 1}", k): (v, logs["tf"][i][k]) for k, v in logs["torch"][i].items()})
        for group, values in groups["torch"].items():
            for key, value in values.items():
                q[(group, key)] = (value, groups["tf"][group][key])
        for det in (False, True):
            q[("act", f"deterministic={det}")] = (acts["torch"][det], acts["tf"][det])
        seen.update(groups=groups["torch"], logs=logs["torch"])
        return q

    assert_twins_agree(twin_report(measure))
    model = seen["groups"]["model"]
    for target, source in (("target_critic.", "critic."), ("target_networks.", "critic_networks.")):
        pairs = [(k, source + k[len(target):]) for k in model if k.startswith(target)]
        assert all(not np.array_equal(model[t], model[s]) for t, s in pairs)  # the targets trail their sources
    if "temperature_optimizer" in seen["groups"]:
        assert int(seen["groups"]["temperature_optimizer"]["step"]) > 0 and "temperature_loss" in seen["logs"][1]
