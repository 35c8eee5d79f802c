"""Env specs and checks shared by the tests of the vector envs whose envs live in workers (Ray actors,
local worker processes): a Hopper that falls and hits short time limits, a robomimic Lift with tiny episodes, and
an exact comparison of two vector envs' info dicts."""

from __future__ import annotations

import numpy as np

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
