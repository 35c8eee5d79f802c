"""The robomimic suite (shared/data/robomimic.py) and robosuite 1.4.1's fix for this MuJoCo
(shared/data/robosuite_compat.py): every task builds from upstream's metadata with upstream's observation
layout, seeding is per env and leaves numpy's global RNG alone, the patched call sites give MuJoCo's own
answers."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from shared.data.dataset import Normalization
from shared.data.envs import ENV_SUITES, EnvSpec, GymSuite, make_env, make_vector_env
from shared.data.robomimic import (
    ENV_META_DIR,
    EnvMeta,
    RobomimicImageSuite,
    RobomimicSuite,
    default_low_dim_keys,
    env_meta_path,
    make_robomimic_env,
)
from shared.errors import ConfigError

# upstream's cfg/robomimic/finetune/<task>/ft_ppo_diffusion_mlp.yaml: obs_dim, action_dim
UPSTREAM_DIMS = {"lift": (19, 7), "can": (23, 7), "square": (23, 7), "transport": (59, 14)}


@pytest.fixture(scope="module")
def envs() -> dict:
    return {task: make_robomimic_env(task) for task in UPSTREAM_DIMS}


def test_each_task_has_upstreams_observation_and_action_sizes(envs: dict) -> None:
    for task, (obs_dim, action_dim) in UPSTREAM_DIMS.items():
        env = envs[task]
        obs, info = env.reset(seed=0)
        assert obs.shape == (obs_dim,) and env.observation_space.shape == (obs_dim,)
        assert env.action_space.shape == (action_dim,)
        assert env.robosuite_env.hard_reset is False and env.robosuite_env.has_renderer is False
        obs, reward, terminated, truncated, info = env.step(np.zeros(action_dim))
        assert obs.shape == (obs_dim,) and reward == 0.0 and not terminated and not truncated
        assert info == {"is_success": False}


def test_steps_draw_no_random_numbers(envs: dict) -> None:
    """Only builds and resets use numpy's global RNG (which each env swaps for its own); a step must not."""
    for task, env in envs.items():
        env.reset(seed=2)
        np.random.seed(7)
        before = np.random.get_state()[1].copy()
        for action in np.random.default_rng(0).uniform(-1, 1, (5, UPSTREAM_DIMS[task][1])):
            env.step(action)
        np.testing.assert_array_equal(np.random.get_state()[1], before)
        assert np.random.get_state()[2] == 624  # np.random.seed(7) leaves the position at the end; no draw moved it


def test_observation_is_the_low_dim_keys_in_order(envs: dict) -> None:
    env = envs["transport"]
    obs, _ = env.reset(seed=1)
    raw = env.robosuite_env._get_observations(force_update=True)
    expected = np.concatenate([raw[k] for k in default_low_dim_keys("transport")[:-1]] + [raw["object-state"]])
    np.testing.assert_array_equal(obs, expected)
    assert env.low_dim_keys == ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "robot1_eef_pos",
                                "robot1_eef_quat", "robot1_gripper_qpos", "object")


def test_seeded_resets_repeat_differ_across_seeds_and_leave_the_global_rng(envs: dict) -> None:
    env = envs["can"]
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    c, _ = env.reset(seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[7:], c[7:])  # the can is placed elsewhere
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    # an unseeded reset continues the env's own stream, as upstream's worker's global RNG does
    d, _ = env.reset()
    env.reset(seed=6)
    e, _ = env.reset()
    np.testing.assert_array_equal(d, e)


def test_envs_in_one_process_draw_what_each_would_alone() -> None:
    """Upstream seeds each worker process's global RNG with seed + i; two envs sharing a process here must
    not share a stream."""
    first, second = make_robomimic_env("lift"), make_robomimic_env("lift")
    first.reset(seed=10)
    second.reset(seed=11)
    a, _ = first.reset()
    b, _ = second.reset()
    alone = make_robomimic_env("lift")
    alone.reset(seed=10)
    c, _ = alone.reset()
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, b)


def test_model_is_built_from_the_model_seed() -> None:
    """Lift draws its cube's size when the model is built: the same for one seed, another for another."""
    def cube_size(env) -> np.ndarray:
        model = env.robosuite_env.sim.model
        return model.geom_size[model.geom_name2id("cube_g0")].copy()

    same = [make_robomimic_env("lift", model_seed=s) for s in (42, 42, 43)]
    np.testing.assert_array_equal(cube_size(same[0]), cube_size(same[1]))
    assert not np.array_equal(cube_size(same[0]), cube_size(same[2]))


def test_patched_joint_addresses_and_mass_matrix_are_mujocos(envs: dict) -> None:
    env = envs["square"].robosuite_env
    model, data = env.sim.model, env.sim.data
    for j in range(model.njnt):
        name = model.joint_id2name(j)
        qpos, dof = model.get_joint_qpos_addr(name), model.get_joint_qvel_addr(name)
        kind = mujoco.mjtJoint(int(model.jnt_type[j]))
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            assert qpos == (model.jnt_qposadr[j], model.jnt_qposadr[j] + 7)
            assert dof == (model.jnt_dofadr[j], model.jnt_dofadr[j] + 6)
        else:
            assert kind in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
            assert (qpos, dof) == (model.jnt_qposadr[j], model.jnt_dofadr[j])
    controller = env.robots[0].controller
    controller.new_update = True
    controller.update(force=True)
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model._model, data._data, full)
    idx = controller.qvel_index
    np.testing.assert_array_equal(controller.mass_matrix, full[np.ix_(idx, idx)])
    assert np.all(np.linalg.eigvalsh(controller.mass_matrix) > 0)


def test_env_meta_found_by_upstream_path_vendored_name_or_task(tmp_path) -> None:
    assert env_meta_path("cfg/robomimic/env_meta/can.json") == ENV_META_DIR / "can.json"
    assert env_meta_path("transport") == ENV_META_DIR / "transport.json"
    own = tmp_path / "mine.json"
    own.write_text((ENV_META_DIR / "lift.json").read_text())
    assert env_meta_path(own) == own
    meta = EnvMeta.load("square")
    assert meta.env_name == "NutAssemblySquare" and meta.env_version == "1.4.1"
    assert meta.env_kwargs["controller_configs"]["type"] == "OSC_POSE"
    with pytest.raises(ConfigError, match="not found"):
        env_meta_path("cfg/robomimic/env_meta/stack.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="not an env_meta json"):
        EnvMeta.load(bad)


def test_unknown_low_dim_key_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match="no observation 'robot1_eef_pos'.*may name.*robot0_eef_pos"):
        make_robomimic_env("lift", ("robot0_eef_pos", "robot1_eef_pos"))


def test_suite_registry_and_vector_env_with_wrappers() -> None:
    assert {"mujoco_locomotion_lowdim": GymSuite, "robomimic_lowdim": RobomimicSuite,
            "robomimic_image": RobomimicImageSuite} == ENV_SUITES
    obs_dim, act_dim = UPSTREAM_DIMS["lift"]
    norm = Normalization(np.full(obs_dim, -2.0), np.full(obs_dim, 2.0), np.full(act_dim, -1.0), np.full(act_dim, 1.0))
    suite = RobomimicSuite(str(env_meta_path("lift")), default_low_dim_keys("lift"))
    spec = EnvSpec("lift", 2, 2, 3, 7, norm, False, suite)
    one = make_env(spec)
    raw, _ = one.env.unwrapped.reset(seed=4)
    obs, _ = one.reset(seed=4)
    assert obs.shape == (2, obs_dim) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[1], norm.normalize_obs(raw), rtol=1e-6)
    np.testing.assert_array_equal(obs[0], obs[1])  # history padded with the first observation
    venv = make_vector_env(spec)
    try:
        obs, _ = venv.reset(seed=[4, 5])
        assert obs.shape == (2, 2, obs_dim)
        ends = []
        for _ in range(3):  # 3 chunks of 3 steps: the 7-step limit cuts the third after one step
            obs, reward, terminated, truncated, info = venv.step(np.zeros((2, 3, act_dim)))
            ends.append(truncated.copy())
            assert not terminated.any()
        assert [e.tolist() for e in ends] == [[False, False], [False, False], [True, True]]
        assert "final_obs" in info
    finally:
        venv.close()


@pytest.mark.parametrize("task", ["can", "transport"])
def test_sim_state_restores_an_episode_exactly(task: str) -> None:
    """A snapshot mid-episode put into a freshly reset env (as a resumed run does), or back into the original
    after it went on, goes on bit for bit as the original did: observations, rewards, the time limit, the next
    (unseeded) reset."""
    suite = RobomimicSuite(str(env_meta_path(task)), default_low_dim_keys(task), model_seed=3)
    spec = EnvSpec(task, 1, 2, 4, 40, None, False, suite)
    original, fresh = make_env(spec), make_env(spec)
    chunks = np.random.default_rng(1).uniform(-1, 1, (10, 4, original.action_space.shape[1]))
    original.reset(seed=5)
    fresh.reset(seed=9)
    for chunk in chunks[:4]:
        original.step(chunk)
    state = original.sim_state

    def rest(env) -> list:
        out = [env.step(chunk) for chunk in chunks[4:]]  # the 40-step limit ends the episode at the last chunk
        return [*out, env.reset()]

    expected = rest(original)
    assert expected[-2][3]  # truncated
    for env in (fresh, original):
        env.sim_state = state
        for a, b in zip(expected, rest(env)):
            np.testing.assert_array_equal(a[0], b[0])
            assert a[1:] == b[1:]
