"""Driver pieces the golden test does not isolate: scoring in chunks, the reward scaler's discount
key, resets after an evaluation iteration, and the vector env snapshot that makes resume exact."""

import dataclasses

import numpy as np
import pytest

from dppo.algorithms.ppo import evaluate_in_chunks, make_reward_scaler
from dppo.training.finetune import resets_envs
from shared.data.envs import EnvSpec, make_vector_env, restore_vector_env_state, vector_env_state
from shared.settings import load_settings

DPPO = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"


def _settings(overrides=()):
    return load_settings(DPPO, list(overrides)).ppo


class RowAgent:
    def __init__(self):
        self.calls = []

    def evaluate(self, obs, samples):
        self.calls.append(len(obs))
        return obs.sum(axis=1) * 2.0, samples["chains"] - 1.0


def test_scoring_in_chunks_concatenates_in_order():
    obs, chains = np.arange(14.0).reshape(7, 2), np.arange(21.0).reshape(7, 3)
    agent = RowAgent()
    values, logprobs = evaluate_in_chunks(agent, obs, {"chains": chains}, 3)
    assert agent.calls == [3, 3, 1]
    np.testing.assert_array_equal(values, obs.sum(axis=1) * 2.0)
    np.testing.assert_array_equal(logprobs, chains - 1.0)
    assert _settings().logprob_batch_size == 10000
    assert _settings(["train.logprob_batch_size=6"]).logprob_batch_size == 6


def test_reward_scaler_discounts_with_upstreams_fixed_099_unless_told():
    s = _settings(["train.gamma=0.999"])
    assert s.reward_scale_gamma is None and make_reward_scaler(s).gamma == 0.99
    assert make_reward_scaler(_settings(["train.gamma=0.999", "train.reward_scale_gamma=0.999"])).gamma == 0.999
    assert make_reward_scaler(_settings(["train.reward_scale_running=false"])) is None


def test_no_reset_right_after_an_eval_iteration_unless_told():
    s = dataclasses.replace(_settings(), val_freq=3, reset_at_iteration=False)
    assert [resets_envs(i, s) for i in range(7)] == [True, False, False, True, False, False, True]
    on = dataclasses.replace(s, reset_after_eval_iteration=True)
    assert [resets_envs(i, on) for i in range(7)] == [True, True, False, True, True, False, True]
    assert all(resets_envs(i, dataclasses.replace(s, reset_at_iteration=True)) for i in range(7))


@pytest.mark.parametrize("asynchronous", [False, True])
def test_vector_env_snapshot_continues_bit_for_bit(asynchronous):
    spec = EnvSpec("hopper-medium-v2", 3, 2, 4, max_episode_steps=30, asynchronous=asynchronous)
    actions = np.random.default_rng(0).uniform(-1, 1, (60, 3, 4, 3)).astype(np.float32)
    a, b = make_vector_env(spec), make_vector_env(spec)
    try:
        a.reset(seed=[1, 2, 3])
        for t in range(17):
            a.step(actions[t])
        snap = vector_env_state(a)
        expected = [a.step(actions[t])[:4] for t in range(17, 60)]
        b.reset(seed=[7, 8, 9])
        restore_vector_env_state(b, snap)
        got = [b.step(actions[t])[:4] for t in range(17, 60)]
    finally:
        a.close()
        b.close()
    assert sum(int(e[2].sum() + e[3].sum()) for e in expected) > 3  # autoresets happened after the snapshot
    for e, g in zip(expected, got):
        for x, y in zip(e, g):
            np.testing.assert_array_equal(x, y)
