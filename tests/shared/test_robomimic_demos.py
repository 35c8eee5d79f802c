"""The scripted robomimic demonstration makers (shared/data/robomimic_demos.py): rotation helpers, one
controller step, the phase machine's regrasp, upstream's normalization and file layout, and one short
episode of each task on the real robosuite env."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from shared.data import robomimic_demos as demos
from shared.data.robomimic import make_robomimic_env
from shared.errors import ConfigError


def _quat_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """x, y, z, w of a turn by angle about a unit axis."""
    return np.concatenate([np.sin(angle / 2) * np.asarray(axis, float), [np.cos(angle / 2)]])


def _rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(axis_angle)
    k = axis_angle / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def test_quaternion_to_matrix_matches_rodrigues_and_back_to_axis_angle() -> None:
    rng = np.random.default_rng(0)
    for angle in [0.3, 1.7, np.pi - 1e-3, np.pi]:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        rot = demos.quat_to_mat(_quat_about(axis, angle))
        np.testing.assert_allclose(rot, _rodrigues(axis * angle), atol=1e-12)
        back = demos.mat_to_axis_angle(rot)
        np.testing.assert_allclose(_rodrigues(back), rot, atol=1e-6)  # a half turn's axis sign is free
        assert np.linalg.norm(back) == pytest.approx(angle, abs=1e-6)
    np.testing.assert_array_equal(demos.mat_to_axis_angle(np.eye(3)), np.zeros(3))


def test_yaw_wrap_and_symmetric_headings() -> None:
    assert demos.yaw_of(_quat_about([0, 0, 1], 0.4)) == pytest.approx(0.4)
    # the gripper pointing down (a half turn about x) then turned by -2 about world z: its heading is -2
    qz, qx = _quat_about([0, 0, 1], -2.0), _quat_about([1, 0, 0], np.pi)
    (x1, y1, z1, w1), (x2, y2, z2, w2) = qz, qx
    turned = np.array([w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                       w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2])
    np.testing.assert_allclose(demos.quat_to_mat(turned), demos.rot_z(-2.0) @ demos.R_DOWN, atol=1e-12)
    assert demos.yaw_of(turned) == pytest.approx(-2.0)
    assert demos.wrap(3 * np.pi / 2) == pytest.approx(-np.pi / 2) and demos.wrap(np.pi) == pytest.approx(np.pi)
    assert demos.nearest_equivalent(3.0, 0.0, np.pi) == pytest.approx(3.0 - np.pi)
    assert demos.nearest_equivalent(1.4, 0.0, np.pi / 2) == pytest.approx(1.4 - np.pi / 2)
    assert demos.nearest_equivalent(-0.2, 0.1, np.pi) == pytest.approx(-0.2)


def test_controller_step_scales_and_clips() -> None:
    eef = np.array([0.1, 0.2, 0.9])
    move = demos.move_action(eef, eef + [0.01, -0.2, 0.0], gain=2.0, max_step=0.7)
    np.testing.assert_allclose(move, [0.4, -0.7, 0.0])  # 2 x 1 cm / 5 cm per unit; capped at 0.7
    down = demos.R_DOWN
    quat_down = np.array([1.0, 0.0, 0.0, 0.0])  # a half turn about x: the gripper pointing down, heading 0
    np.testing.assert_allclose(demos.quat_to_mat(quat_down), down, atol=1e-15)
    np.testing.assert_allclose(demos.turn_action(quat_down, 0.0, 1.0, 1.0), 0.0, atol=1e-12)
    turn = demos.turn_action(quat_down, 0.2, 1.0, 1.0)  # heading 0 -> 0.2: a turn about world z
    np.testing.assert_allclose(turn, [0.0, 0.0, 0.2 / demos.ROT_SCALE], atol=1e-12)
    np.testing.assert_allclose(demos.turn_action(quat_down, 2.0, 1.0, 1.0), [0.0, 0.0, 1.0], atol=1e-12)


def _obs(eef: list[float], grip: float, obj: list[float]) -> np.ndarray:
    """A Lift-like observation (19,): heading 0, gripper opening `grip` (both fingers), cube at obj."""
    return np.concatenate([eef, [1.0, 0, 0, 0], [grip / 2, -grip / 2], obj, [0, 0, 0, 1], np.zeros(3)])


def test_phase_machine_walks_its_phases_and_starts_over_after_a_missed_grasp() -> None:
    rng = np.random.default_rng(0)
    maker = demos.make_maker("lift", _obs([0, 0, 1.0], 0.04, [0, 0, 0.83]), demos.Scene(np.zeros(3)), rng)
    style = maker.style
    assert maker.act(_obs([0, 0, 1.0], 0.04, [0, 0, 0.83]))[6] == demos.OPEN and maker.phase == "approach"
    over = (np.array([0, 0, 0.83]) + style.jitter + [0, 0, style.hover]).tolist()
    maker.act(_obs(over, 0.04, [0, 0, 0.83]))
    assert maker.phase == "descend"
    at = (np.array([0, 0, 0.83]) + style.jitter).tolist()
    action = maker.act(_obs(at, 0.04, [0, 0, 0.83]))
    assert maker.phase == "grasp" and action[6] == demos.CLOSED
    for _ in range(style.close_steps):
        maker.act(_obs(at, 0.04, [0, 0, 0.83]))
    action = maker.act(_obs(at, 0.04, [0, 0, 0.83]))
    assert maker.phase == "lift" and action[2] > 0 and action[6] == demos.CLOSED
    maker.act(_obs(at, 0.0, [0, 0, 0.83]))  # fingers shut on nothing: a new plan from the start
    assert maker.phase == "approach"
    assert np.all(np.abs(action) <= 1.0)


def test_upstream_normalization_starts_at_zero_and_the_dataset_layout() -> None:
    states = np.array([[1.0, -2.0], [3.0, -1.0], [2.0, -3.0]])
    actions = np.array([[0.5], [-0.5], [0.25]])
    norm = demos.upstream_normalization(states, actions)
    np.testing.assert_array_equal(norm["obs_min"], [0.0, -3.0])  # min(0, 1) for a positive dimension
    np.testing.assert_array_equal(norm["obs_max"], [3.0, 0.0])
    episodes = [demos.Episode(5, states[:2], actions[:2], np.array([0.0, 1.0]), True),
                demos.Episode(6, states[2:], actions[2:], np.array([1.0]), True)]
    train, norm2 = demos.dataset_arrays(episodes)
    assert sorted(train) == ["actions", "rewards", "states", "terminals", "traj_lengths"]
    np.testing.assert_array_equal(train["traj_lengths"], [2, 1])
    assert train["terminals"].dtype == bool and not train["terminals"].any()
    np.testing.assert_allclose(train["states"][:, 0], 2 * states[:, 0] / (3 + 1e-6) - 1)
    np.testing.assert_allclose(train["actions"][:, 0], 2 * (actions[:, 0] + 0.5) / (1 + 1e-6) - 1)
    assert norm2.keys() == norm.keys()


def test_npz_bytes_depend_on_the_arrays_only(tmp_path, monkeypatch) -> None:
    arrays = {"a": np.arange(5.0), "b": np.zeros(3, bool)}
    demos._write_npz(tmp_path / "x.npz", arrays)
    monkeypatch.setattr("time.time", lambda: 2e9)  # zipfile stamps entries with the clock; ours are fixed
    demos._write_npz(tmp_path / "y.npz", arrays)
    first, second = (tmp_path / "x.npz").read_bytes(), (tmp_path / "y.npz").read_bytes()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    with np.load(tmp_path / "x.npz") as loaded:
        np.testing.assert_array_equal(loaded["a"], arrays["a"])
        assert loaded["b"].dtype == bool


def test_episode_seeds_are_reproducible_and_distinct() -> None:
    s0, g0 = demos.episode_seeds(0, 0)
    s0b, g0b = demos.episode_seeds(0, 0)
    assert s0 == s0b and g0.random() == g0b.random()
    assert len({demos.episode_seeds(seed, k)[0] for seed in (0, 1) for k in range(50)}) == 100


# The seed of each task's episode below: Transport's maker fails about half its attempts (data/README.md); the
# first attempt of seed 0 is one that succeeds.
MAKER_SEED = {"lift": 3, "can": 3, "square": 3, "transport": 0}


@pytest.mark.parametrize("task", demos.DEMO_TASKS)
def test_a_maker_succeeds_on_the_env_and_records_states_before_actions(task: str) -> None:
    env = make_robomimic_env(task, model_seed=MAKER_SEED[task])
    reset_seed, rng = demos.episode_seeds(MAKER_SEED[task], 0)
    episode = demos.run_episode(env, task, reset_seed, rng, demos.MAX_STEPS[task])
    assert episode.success and len(episode.actions) < demos.MAX_STEPS[task]
    assert episode.states.shape == (len(episode.actions), env.observation_space.shape[0])
    grippers = episode.actions[:, 6::7]  # (T, arms): each arm's last action entry
    assert np.all(np.abs(episode.actions) <= 1.0) and set(np.unique(grippers)) <= {-1.0, 1.0}
    assert episode.rewards[-1] == 1.0 and episode.rewards[0] == 0.0  # sparse: 1 once the task is done
    first, _ = env.reset(seed=reset_seed)
    np.testing.assert_array_equal(first, episode.states[0])
    env.close()


def test_transport_poses_read_robosuites_observables_for_each_arm() -> None:
    """The flat Transport observation (59,) split per arm as TransportPoses says, against robosuite's own named
    observations of the same state."""
    env = make_robomimic_env("transport", model_seed=0)
    obs, _ = env.reset(seed=4)
    raw = env.robosuite_env._get_observations(force_update=True)
    env.close()
    assert obs.shape == (59,)
    for arm in (0, 1):
        p, other = demos.TransportPoses.of_arm(obs, arm), 1 - arm
        pairs = [(p.eef_pos, f"robot{arm}_eef_pos"), (p.eef_quat, f"robot{arm}_eef_quat"),
                 (p.gripper, f"robot{arm}_gripper_qpos"), (p.other_eef_pos, f"robot{other}_eef_pos"),
                 (p.other_gripper, f"robot{other}_gripper_qpos"), (p.obj_pos, "payload_pos"),
                 (p.obj_quat, "payload_quat"), (p.trash_pos, "trash_pos"), (p.trash_quat, "trash_quat"),
                 (p.lid_pos, "lid_handle_pos"), (p.lid_quat, "lid_handle_quat"), (p.target_bin, "target_bin_pos"),
                 (p.trash_bin, "trash_bin_pos")]
        for value, key in pairs:
            np.testing.assert_array_equal(value, raw[key], err_msg=key)
        assert p.trash_done == bool(raw["trash_in_trash_bin"]) is False


def test_transport_grips_across_the_handle_and_robot1_takes_it_pointing_down_and_forward() -> None:
    # a handle along world y (the payload's local z): the fingers (a down-pointing gripper's local y, turned by
    # its heading) must close along x, so the heading is +-90 degrees, the one nearest the current
    p = demos.Poses(np.zeros(3), np.array([1.0, 0, 0, 0]), np.zeros(2), np.array([0.2, -0.45, 0.83]),
                    _quat_about([1.0, 0, 0], -np.pi / 2))  # local z -> world +y
    np.testing.assert_allclose(demos.handle_axis(p), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(demos.handle_point(p, -0.085), [0.2, -0.535, 0.83], atol=1e-12)
    assert abs(demos.handle_yaw(p)) == pytest.approx(np.pi / 2)
    fingers = (demos.rot_z(demos.handle_yaw(p)) @ demos.R_DOWN)[:, 1]
    assert abs(fingers @ demos.handle_axis(p)) < 1e-12
    # robot1's two orientations: fingers along world x in both; pointing straight down, then down and along -y
    for rot in (demos.R_CARRY, demos.R_TAKE):
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        assert abs(rot[0, 1]) == pytest.approx(1.0)
    np.testing.assert_allclose(demos.R_CARRY[:, 2], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(demos.R_TAKE[:, 2], [0, -np.sqrt(0.5), -np.sqrt(0.5)], atol=1e-12)


def test_unknown_task_is_one_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no demonstration maker for robomimic task 'tool_hang'"):
        demos.make_demos("tool_hang", 1, 0, tmp_path)
