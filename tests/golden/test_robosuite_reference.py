"""robosuite 1.4.1 patched for the project's MuJoCo (shared/data/robosuite_compat.py) against the same robosuite
unpatched on MuJoCo 3.9.0 (fixtures/robosuite_reference.npz, scripts/golden/robosuite_reference.py), and the
OSC_POSE controller of upstream's env metadata doing what its parameters say.

What agrees and how closely (measured when the fixture was made, MuJoCo 4.0.1 vs 3.9.0):
- the first observation after the seeded build and reset: bit for bit up to float rounding (< 3e-17);
- the arms' end effectors and controller goals while nothing but the arm moves (Lift, Can, Square: all 40
  steps; Transport: until an arm touches something, steps 1-23): worst 2.4e-11 m;
- everything, objects included, over 40 steps: worst 7.4e-4 (Transport's payload; 6.2e-4 Can's can,
  4.6e-6 Lift's cube, 1.6e-9 Square's nut). These differences start at objects resting in contact and at
  arm-object contacts: MuJoCo's contact solver changed between 3.9 and 4.0, robosuite's code path did not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.data.robomimic import EnvMeta, make_robomimic_env

FIXTURES = Path(__file__).parent / "fixtures"
REF = np.load(FIXTURES / "robosuite_reference.npz")
META = json.loads((FIXTURES / "robosuite_reference.json").read_text())
TASKS = ("lift", "can", "square", "transport")
ARM_ONLY_STEPS = {"lift": 40, "can": 40, "square": 40, "transport": 23}  # steps before any arm touches anything


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, np.ndarray]]:
    """Each task driven by the fixture's actions in this project's env (same seeds)."""
    out = {}
    for task in TASKS:
        env = make_robomimic_env(task, tuple(META["low_dim_keys"][task]), model_seed=META["model_seed"])
        obs, _ = env.reset(seed=META["reset_seed"])
        rs = env.robosuite_env
        record: dict[str, list] = {"obs": [obs], "reward": [], "eef_pos": [], "goal_pos": []}
        for action in REF[f"{task}/actions"]:
            obs, reward, _, _, _ = env.step(action)
            record["obs"].append(obs)
            record["reward"].append(reward)
            record["eef_pos"].append([rs.sim.data.site_xpos[r.eef_site_id].copy() for r in rs.robots])
            record["goal_pos"].append([np.array(r.controller.goal_pos) for r in rs.robots])
        out[task] = {k: np.array(v) for k, v in record.items()}
    return out


def test_fixture_is_unpatched_robosuite_141_on_mujoco_39() -> None:
    assert META["robosuite"] == "1.4.1" and META["mujoco"] == "3.9.0"


@pytest.mark.parametrize("task", TASKS)
def test_seeded_build_and_reset_match(runs: dict, task: str) -> None:
    np.testing.assert_allclose(runs[task]["obs"][0], REF[f"{task}/obs"][0], rtol=0, atol=1e-15)


@pytest.mark.parametrize("task", TASKS)
def test_arms_move_as_on_mujoco_39_until_contact(runs: dict, task: str) -> None:
    n = ARM_ONLY_STEPS[task]
    for key in ("eef_pos", "goal_pos"):
        np.testing.assert_allclose(runs[task][key][:n], REF[f"{task}/{key}"][:n], rtol=0, atol=1e-10)


@pytest.mark.parametrize("task", TASKS)
def test_whole_trajectories_agree_up_to_contact_physics(runs: dict, task: str) -> None:
    np.testing.assert_allclose(runs[task]["obs"], REF[f"{task}/obs"], rtol=0, atol=1e-3)
    np.testing.assert_array_equal(runs[task]["reward"], REF[f"{task}/reward"])


def _step_measuring(env, action: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(each arm's end effector where the controller reads it, each arm's position goal) for one step."""
    rs = env.robosuite_env
    rs.sim.forward()
    before = [rs.sim.data.site_xpos[r.eef_site_id].copy() for r in rs.robots]
    env.step(action)
    return before, [np.array(r.controller.goal_pos) for r in rs.robots]


def test_position_delta_is_output_max_times_action_in_the_world_frame() -> None:
    """OSC_POSE with control_delta: the goal is the end effector plus action * output_max (0.05 m), input
    clipped to [input_min, input_max] = [-1, 1]; the arm then closes in on it: 0.0097 m in the first 50 ms step,
    0.0126 m per step after 10 steps of a held +x (the fixture's pure-x phase)."""
    controller = EnvMeta.load("can").env_kwargs["controller_configs"]
    assert controller["output_max"][:3] == [0.05, 0.05, 0.05] and controller["input_max"] == 1
    env = make_robomimic_env("can")
    env.reset(seed=0)
    for action, expected in (([1, 0, 0], [0.05, 0, 0]), ([0, -0.5, 0], [0, -0.025, 0]), ([0, 0, 3], [0, 0, 0.05])):
        before, goal = _step_measuring(env, np.array([*action, 0, 0, 0, -1.0]))
        np.testing.assert_allclose(goal[0] - before[0], expected, rtol=0, atol=1e-12)
    dx = np.diff(REF["can/eef_pos"][:META["pure_x_steps"], 0, 0])
    np.testing.assert_allclose(dx[[0, -1]], [0.0097, 0.0126], atol=5e-5)
    moved = REF["can/eef_pos"][META["pure_x_steps"] - 1, 0] - REF["can/eef_pos"][0, 0]
    assert moved[0] > 0.12 and np.all(np.abs(moved[1:]) < 0.1 * moved[0])


def test_transport_arms_take_world_frame_deltas() -> None:
    """Transport's two Pandas face each other (bases yawed +90 and -90 degrees): a +x delta moves either arm
    along the world's +x, as in upstream's robosuite 1.4.1 (1.5's default would read it in each base's frame)."""
    env = make_robomimic_env("transport")
    env.reset(seed=0)
    rs = env.robosuite_env
    yaws = [np.degrees(2 * np.arctan2(q[3], q[0])) for q in
            (rs.sim.data.get_body_xquat(r.robot_model.root_body) for r in rs.robots)]
    np.testing.assert_allclose(yaws, [90, -90], atol=1e-6)
    for arm in (0, 1):
        action = np.zeros(14)
        action[[6, 13]] = -1.0  # grippers open
        action[7 * arm] = 1.0
        start = [rs.sim.data.site_xpos[r.eef_site_id].copy() for r in rs.robots]
        for _ in range(4):
            before, goal = _step_measuring(env, action)
            np.testing.assert_allclose(goal[arm] - before[arm], [0.05, 0, 0], rtol=0, atol=1e-12)
            np.testing.assert_allclose(goal[1 - arm] - before[1 - arm], 0, atol=1e-12)
        moved = rs.sim.data.site_xpos[rs.robots[arm].eef_site_id] - start[arm]
        assert moved[0] > 0.025 and np.all(np.abs(moved[1:]) < 0.05 * moved[0])
