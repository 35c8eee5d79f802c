"""Env specs and checks shared by the tests of the vector envs whose envs live in workers (Ray actors,
local worker processes): a Hopper that falls and hits short time limits, a robomimic Lift with tiny episodes, and
an exact comparison of two vector envs' info dicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.data.dataset import Normalization
from shared.data.envs import EnvSpec
from shared.data.robomimic import RobomimicSuite, default_low_dim_keys, env_meta_path


def hopper_spec(n_envs: int) -> EnvSpec:
    return EnvSpec("hopper-medium-v2", n_envs, 2, 4, max_episode_steps=22)


def lift_spec(n_envs: int) -> EnvSpec:
    norm = Normalization(np.full(19, -2.0), np.full(19, 2.0), np.full(7, -1.0), np.full(7, 1.0))
    suite = RobomimicSuite(str(env_meta_path("lift")), default_low_dim_keys("lift"))
    return EnvSpec("lift", n_envs, 2, 3, 7, norm, False, suite)


def assert_same_info(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_info(a[key], b[key])
        elif a[key].dtype == object:
            for x, y in zip(a[key], b[key]):
                np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(a[key], b[key])


def assert_steps_like_the_local_env(local: Any, remote: Any) -> None:
    """A worker-block env (Ray actors or local processes, 3 envs in blocks of 2 and 1) against SyncVectorEnv
    over 14 steps of random actions: observations, rewards, flags and every info key (final_obs/final_info at
    episode ends) equal, stepped whole on even steps and group by group on odd ones (the second group sent
    first, as env.overlap interleaves them); a snapshot of the local envs put back into both at step 8 (mid-
    episode for some) goes on the same, and the simulator states agree at the end."""
    assert remote.sizes == [2, 1] and remote.overlap_groups == [slice(0, 2), slice(2, 3)]
    a, a_info = local.reset(seed=[5, 6, 7])
    b, b_info = remote.reset(seed=[5, 6, 7])
    np.testing.assert_array_equal(a, b)
    assert_same_info(a_info, b_info)
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(14):
        actions = rng.uniform(-1, 1, local.action_space.shape).astype(np.float32)
        x = local.step(actions)
        if t % 2:
            remote.step_send(1, actions[2:])
            remote.step_send(0, actions[:2])
            second, first = remote.step_recv(1), remote.step_recv(0)
            np.testing.assert_array_equal(remote.group_obs(0, first), x[0][:2])
            y = remote.assemble(first + second)
        else:
            y = remote.step(actions)
        for u, v in zip(x[:4], y[:4]):
            np.testing.assert_array_equal(u, v, err_msg=f"step {t}")
            assert u.dtype == v.dtype
        assert_same_info(x[4], y[4])
        ended += int(np.logical_or(x[2], x[3]).sum())
        if t == 8:
            snapshot = local.get_attr("sim_state")
            local.set_attr("sim_state", snapshot)
            remote.set_attr("sim_state", snapshot)
    assert ended >= 6  # every env went over at least two episode ends (autoresets without a seed)
    for s, r in zip(local.get_attr("sim_state"), remote.get_attr("sim_state")):
        assert s.keys() == r.keys()
        for key in s:
            np.testing.assert_array_equal(s[key], r[key])
    assert remote.step_seconds > 0  # the workers' own stepping time


def assert_same_metrics_to_rounding(turn: list[dict], overlap: list[dict]) -> None:
    """Metrics rows of a run with env.overlap against the same run in turn: the same keys, iterations, episode
    counts and flags; returns and losses within the float32 rounding of policy calls on fewer rows (relative
    1e-6 seen; 1e-5 allowed)."""
    for a, b in zip(turn, overlap, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            rounded = isinstance(value, float) or key == "episode_returns"
            assert b[key] == (pytest.approx(value, rel=1e-5, abs=1e-6) if rounded else value), key
