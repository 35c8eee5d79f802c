"""Which rollout steps RWR trains on, their discounted returns and their weights (shared/algorithms/rwr.py)."""

from __future__ import annotations

import numpy as np

from shared.algorithms.rwr import discounted_returns, finished_episodes, reward_weights, rwr_batch


def test_only_episodes_that_start_and_end_inside_the_rollout_are_kept():
    # env 0: carried-over steps 0-1, episode 2..4, episode 5..6 (one step: dropped), then a running one
    # env 1: one episode over the whole rollout
    first = np.zeros((9, 2))
    first[[2, 5, 6], 0] = 1
    first[[0, 8], 1] = 1
    assert finished_episodes(first) == [(0, 2, 5), (1, 0, 8)]


def test_returns_are_discounted_per_policy_step_from_each_step_to_the_episode_end():
    np.testing.assert_allclose(discounted_returns(np.array([1.0, 2.0, 4.0]), 0.5), [1 + 0.5 * 2 + 0.25 * 4, 4.0, 4.0])


def test_weights_are_exp_of_beta_times_normalised_returns_clipped_at_the_maximum():
    returns = np.array([0.0, 1.0, 2.0, 10.0])
    z = (returns - returns.mean()) / (returns.std() + 1e-3)
    w = reward_weights(returns, beta=0.5, max_weight=2.0)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, np.minimum(np.exp(0.5 * z), 2.0), rtol=1e-6)
    assert w[-1] == 2.0 and np.all(w[:-1] < 2.0)
    assert np.all(reward_weights(np.array([-1e4, 0.0, 1e4]), beta=100.0, max_weight=7.0) <= 7.0)  # no inf


def test_rwr_batch_rows_follow_upstream_order_env_by_env():
    T, N = 6, 2
    obs = np.arange(T * N, dtype=np.float32).reshape(T, N, 1, 1)
    actions = np.repeat(obs, 3, axis=-1).reshape(T, N, 1, 3)
    rewards = np.ones((T, N))
    first = np.zeros((T + 1, N))
    first[[0, 3, 6], 0] = 1
    first[[1, 5], 1] = 1
    data = rwr_batch(obs, actions, rewards, first, gamma=1.0, beta=1.0, max_weight=100.0)
    # env 0: steps 0-2 and 3-5; env 1: steps 1-4
    np.testing.assert_array_equal(data["obs"].ravel(), np.concatenate([obs[0:6, 0], obs[1:5, 1]]).ravel())
    np.testing.assert_array_equal(data["returns"], [3, 2, 1, 3, 2, 1, 4, 3, 2, 1])
    assert data["actions"].shape == (10, 1, 3) and data["weights"].shape == (10,)
    assert rwr_batch(obs, actions, rewards, np.zeros((T + 1, N)), 1.0, 1.0, 100.0) is None
