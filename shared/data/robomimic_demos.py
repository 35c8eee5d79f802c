"""Scripted demonstrations for the robomimic tasks (Lift, Can, Square, Transport), written as upstream's processed
data.

No robomimic dataset can be downloaded where this project is built, so its demonstrations are made here by
phase machines that read the arm's and the object's poses from the low-dimensional observation (upstream's
low_dim_keys: robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object; Transport has robot1's too) and
command robosuite's OSC_POSE controller with delta actions in [-1, 1] per arm: dpos (1 = 5 cm), drot
(world-frame axis-angle, 1 = 0.5 rad), gripper (-1 open, +1 closed). The only scene facts the observation
lacks are fixed per task and read from the robosuite env: Can's goal bin and Square's peg.

  Lift:   above the cube -> down to it -> close -> lift.
  Can:    above the can -> down -> close -> lift over the bin wall -> carry over the goal bin -> lower -> open
          -> back up (robosuite counts the can as placed only once the gripper has left it).
  Square: turn the gripper to the nut's handle while moving above it -> down -> close -> lift above the peg
          -> turn the nut square to the peg while centring its hole over the peg -> lower -> open -> back up.
  Transport: one phase machine per arm, coordinating only through the observation. robot0: lid off the start
          bin and down beside it -> grasp the hammer's handle by its end -> lift (the hammer swings to hang head
          down) -> hold it over the gap between the tables -> let go once robot1 holds it -> back off. robot1:
          trash out of the target bin into the trash bin -> wait beside the handover point -> close in on the
          hanging handle -> carry the hammer over the target bin -> lower -> let go.

Every episode draws its own style from its seed (speed gain, waypoint jitter, how long the gripper is held,
correlated action noise), so the demonstrations vary and are somewhat clumsy on purpose: the policy
pre-trained on them should leave fine-tuning room to improve. Only episodes that end in success are kept,
as in upstream's human datasets; a kept episode ends a few steps after the task's success check first holds.

The files follow upstream's script/dataset/process_robomimic_dataset.py: train.npz with `states` (N, Do) and
`actions` (N, Da) normalized to [-1, 1] by 2 (x - min) / (max - min + 1e-6) - 1, `rewards` (N,), `terminals`
(N,) all False, `traj_lengths` (E,); normalization.npz with obs_min, obs_max, action_min, action_max, where
upstream starts its running min and max at 0 (so every min is <= 0 and every max >= 0). Arrays are float64
as robomimic's hdf5 holds them. A stats.json beside them records how the maker did and each kept episode's
reset seed, so an episode can be replayed.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.checkpoint import atomic_write
from shared.data.dataset import EPS
from shared.errors import ConfigError

POS_SCALE = 0.05  # metres per unit of OSC_POSE's position action (env_meta output_max)
ROT_SCALE = 0.5  # radians per unit of its rotation action
OPEN, CLOSED = -1.0, 1.0
# Upstream's max_episode_steps per task (cfg/robomimic/finetune/<task>/*.yaml); a maker's attempt stops there.
MAX_STEPS = {"lift": 300, "can": 300, "square": 400, "transport": 800}
DEMO_TASKS = tuple(MAX_STEPS)
# The gripper pointing straight down with its fingers closing along world y: the orientation robosuite's Panda
# starts near; a yaw turns it about world z.
R_DOWN = np.diag([1.0, -1.0, -1.0])
# How far (x, y, z in metres) an episode's grasp point may sit from the planned one: the can fills most of
# the open gripper, the nut's hole leaves 7 mm around the peg.
JITTER = {"lift": (0.01, 0.01, 0.008), "can": (0.005, 0.005, 0.01), "square": (0.004, 0.004, 0.004),
          "transport": (0.005, 0.005, 0.004)}
SQUARE_HANDLE = 0.054  # the nut's handle centre on its local x axis (robosuite's square-nut.xml handle_site)
EMPTY_GRIP = 0.01  # finger opening (m, sum of both finger joints) below which a closed gripper holds nothing


# ---------------------------------------------------------------- rotations (quaternions are robosuite's x, y, z, w)


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    """(4,) x, y, z, w -> (3, 3) rotation matrix."""
    x, y, z, w = np.asarray(quat, np.float64) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def mat_to_axis_angle(rot: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (3,) axis * angle, angle in [0, pi]."""
    cos = np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-9:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # half turn: the axis is the column of R + I with the largest norm
        sym = (rot + np.eye(3)) / 2
        axis = sym[:, np.argmax(np.diag(sym))]
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


def yaw_of(quat: np.ndarray) -> float:
    """Heading of the frame's local x axis in the world's x-y plane (radians)."""
    rot = quat_to_mat(quat)
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def wrap(angle: float) -> float:
    """Angle to (-pi, pi]."""
    return float(-((-angle + np.pi) % (2 * np.pi) - np.pi))


def nearest_equivalent(target: float, current: float, period: float) -> float:
    """The angle target + k period closest to current (a shape symmetric under turns of `period`)."""
    return current + float(((target - current + period / 2) % period) - period / 2)


# ---------------------------------------------------------------- one step of the controller


def move_action(eef_pos: np.ndarray, target: np.ndarray, gain: float, max_step: float) -> np.ndarray:
    """(3,) OSC position action that moves gain x the error, at most max_step (<= 1) per axis."""
    return np.clip(gain * (np.asarray(target) - eef_pos) / POS_SCALE, -max_step, max_step)


def turn_to(eef_quat: np.ndarray, goal: np.ndarray, gain: float, max_step: float) -> np.ndarray:
    """(3,) OSC rotation action towards the (3, 3) gripper orientation `goal` (world frame)."""
    err = mat_to_axis_angle(goal @ quat_to_mat(eef_quat).T)  # goal = err applied to current
    return np.clip(gain * err / ROT_SCALE, -max_step, max_step)


def turn_action(eef_quat: np.ndarray, yaw: float, gain: float, max_step: float) -> np.ndarray:
    """(3,) OSC rotation action towards the gripper pointing down at heading `yaw` (world frame)."""
    return turn_to(eef_quat, rot_z(yaw) @ R_DOWN, gain, max_step)


@dataclass(frozen=True)
class Poses:
    """What the makers read from one flat observation (upstream's low_dim_keys order)."""

    eef_pos: np.ndarray  # (3,)
    eef_quat: np.ndarray  # (4,) x, y, z, w
    gripper: np.ndarray  # (2,) finger joint positions
    obj_pos: np.ndarray  # (3,) cube / Can / SquareNut position, the first entries of the object state
    obj_quat: np.ndarray  # (4,)

    @classmethod
    def of(cls, obs: np.ndarray) -> Poses:
        """obs (Do,) = eef_pos (3), eef_quat (4), gripper_qpos (2), object (pos 3, quat 4, ...)."""
        return cls(obs[0:3], obs[3:7], obs[7:9], obs[9:12], obs[12:16])

    @property
    def yaw(self) -> float:
        return yaw_of(self.eef_quat)


# ---------------------------------------------------------------- an episode's style and the phase machine


@dataclass(frozen=True)
class Style:
    """One episode's manner, drawn from its seed."""

    gain: float  # fraction of the remaining error commanded per step
    max_step: float  # cap on each position action
    noise: float  # std of the correlated action noise
    jitter: np.ndarray  # (3,) metres added to the grasp point
    hover: float  # height above an object the gripper approaches at (m)
    carry: float  # extra height while carrying (m)
    close_steps: int  # steps spent closing the gripper
    settle_steps: int  # steps held after the task's success first holds

    @classmethod
    def draw(cls, rng: np.random.Generator, task: str) -> Style:
        precise = task in ("square", "transport")  # the nut's 7 mm; the handover of a 3 cm handle
        return cls(gain=float(rng.uniform(1.5, 3.0)), max_step=float(rng.uniform(0.6, 1.0)),
                   noise=float(rng.uniform(0.02, 0.08) if precise else rng.uniform(0.05, 0.25)),
                   jitter=rng.uniform(-1, 1, 3) * np.array(JITTER[task]),
                   hover=float(rng.uniform(0.05, 0.12)), carry=float(rng.uniform(0.0, 0.06)),
                   close_steps=int(rng.integers(6, 14)), settle_steps=int(rng.integers(2, 10)))


@dataclass
class Phase:
    """Go to target(poses) -> (position, orientation, gripper command) until done(poses, steps). The orientation
    is a heading of the gripper pointing down, None (pointing down at its current heading) or a (3, 3)
    rotation."""

    name: str
    target: Callable[[Poses], tuple[np.ndarray, float | np.ndarray | None, float]]
    done: Callable[[Poses, int], bool]
    timeout: int = 10**9  # steps after which the phase ends anyway (a grasp tried from where the hand got to)
    holding: bool = False  # the object should be in the closed gripper: fingers shut on nothing -> start over
    speed: float = 1.0  # scales the episode's cap on each position action


def near(pos_of: Callable[[Poses], np.ndarray], tol: float, tol_z: float | None = None) -> Callable[[Poses, int], bool]:
    """Done once the gripper is within tol of pos_of in x-y and within tol_z (default tol) in height."""
    def done(p: Poses, n: int) -> bool:
        err = p.eef_pos - pos_of(p)
        return bool(np.linalg.norm(err[:2]) < tol and abs(err[2]) < (tol if tol_z is None else tol_z))

    return done


def after(steps: int) -> Callable[[Poses, int], bool]:
    return lambda p, n: n >= steps


@dataclass
class PhaseMachine:
    """Runs phases in order; the last one runs until the episode ends. A grasp that missed (the fingers shut on
    nothing while the object should be held) makes a new plan from the current poses and starts it over."""

    plan: Callable[[Poses], list[Phase]]
    style: Style
    rng: np.random.Generator
    phases: list[Phase] = field(default_factory=list)
    index: int = 0
    steps: int = 0
    noise_state: np.ndarray = field(default_factory=lambda: np.zeros(6))
    integral: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) summed position error of the phase (m)
    rot_gain: float = 0.6
    integral_gain: float = 0.15  # removes the sag a held object's weight leaves against the controller's stiffness
    read: Callable[[np.ndarray], Poses] = Poses.of  # what this machine's arm sees in an observation

    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs (Do,) -> action (7,) in [-1, 1]."""
        poses = self.read(obs)
        if not self.phases or (self.phases[self.index].holding and poses.gripper[0] - poses.gripper[1] < EMPTY_GRIP):
            self.phases, self.index, self.steps, self.integral = self.plan(poses), 0, 0, np.zeros(3)
        while self.index < len(self.phases) - 1 and (self.phases[self.index].done(poses, self.steps)
                                                     or self.steps >= self.phases[self.index].timeout):
            self.index, self.steps, self.integral = self.index + 1, 0, np.zeros(3)
        pos, orient, grip = self.phases[self.index].target(poses)
        self.steps += 1
        self.integral = np.clip(self.integral + (pos - poses.eef_pos), -0.1, 0.1)
        aim = pos + self.integral_gain * self.integral  # (3,)
        move = move_action(poses.eef_pos, aim, self.style.gain, self.style.max_step * self.phases[self.index].speed)
        goal = orient if isinstance(orient, np.ndarray) else rot_z(poses.yaw if orient is None else orient) @ R_DOWN
        turn = turn_to(poses.eef_quat, goal, self.rot_gain, 1.0)
        rho = 0.8  # noise correlation from step to step
        self.noise_state = rho * self.noise_state + np.sqrt(1 - rho**2) * self.style.noise * self.rng.normal(size=6)
        motion = np.clip(np.concatenate([move, turn]) + self.noise_state, -1.0, 1.0)
        return np.concatenate([motion, [grip]])

    @property
    def phase(self) -> str:
        return self.phases[self.index].name


# ---------------------------------------------------------------- the three tasks


@dataclass(frozen=True)
class Scene:
    """Fixed task facts the observation does not hold: Can's goal (bin centre), Square's peg (x, y, z)."""

    goal: np.ndarray  # (3,)


def scene_of(task: str, robosuite_env: object) -> Scene:
    """Read the goal of a task from its robosuite env (after a reset)."""
    env = robosuite_env
    if task == "can":
        return Scene(np.array(env.target_bin_placements[env.object_to_id["can"]], np.float64))  # type: ignore[attr-defined]
    if task == "square":
        return Scene(np.array(env.sim.data.body_xpos[env.peg1_body_id], np.float64))  # type: ignore[attr-defined]
    return Scene(np.zeros(3))


def lift_phases(start: Poses, scene: Scene, s: Style) -> list[Phase]:
    """Lift: grasp the cube from above (fingers square to its faces) and raise it 15-20 cm."""
    yaw = nearest_equivalent(yaw_of(start.obj_quat), start.yaw, np.pi / 2)
    grasp = lambda p: p.obj_pos + s.jitter  # noqa: E731
    above = lambda p: grasp(p) + np.array([0.0, 0.0, s.hover])  # noqa: E731
    hold = {}

    def lifted(p: Poses) -> np.ndarray:
        hold.setdefault("xy", p.eef_pos[:2].copy())
        return np.concatenate([hold["xy"], [start.obj_pos[2] + 0.15 + s.carry]])

    return [
        Phase("approach", lambda p: (above(p), yaw, OPEN), near(above, 0.02)),
        Phase("descend", lambda p: (grasp(p), yaw, OPEN), near(grasp, 0.008)),
        Phase("grasp", lambda p: (grasp(p), yaw, CLOSED), after(s.close_steps)),
        Phase("lift", lambda p: (lifted(p), yaw, CLOSED), after(10**9), holding=True),
    ]


def can_phases(start: Poses, scene: Scene, s: Style) -> list[Phase]:
    """Can: grasp the can, carry it over the bin wall to the goal bin, lower it, let go, move up."""
    yaw = start.yaw
    carry_z = 1.0 + s.carry
    grasp = lambda p: p.obj_pos + np.array([0.0, 0.0, 0.015]) + s.jitter  # noqa: E731
    above = lambda p: grasp(p) + np.array([0.0, 0.0, s.hover])  # noqa: E731
    goal = scene.goal[:2] + s.jitter[:2] * 4  # where over the bin it lands
    # the can hangs from the gripper: steer the can's position, not the gripper's, over the goal
    over = lambda p: np.concatenate([goal + p.eef_pos[:2] - p.obj_pos[:2], [carry_z]])  # noqa: E731
    lower = lambda p: np.concatenate([over(p)[:2], [scene.goal[2] + 0.14]])  # noqa: E731
    return [
        Phase("approach", lambda p: (above(p), yaw, OPEN), near(above, 0.01, 0.03), timeout=80),
        Phase("descend", lambda p: (grasp(p), yaw, OPEN), near(grasp, 0.01, 0.012), timeout=40),
        Phase("grasp", lambda p: (grasp(p), yaw, CLOSED), after(s.close_steps)),
        Phase("lift", lambda p: (np.concatenate([grasp(p)[:2], [carry_z]]), yaw, CLOSED),
              lambda p, n: p.obj_pos[2] > carry_z - 0.1, timeout=60, holding=True),
        Phase("carry", lambda p: (over(p), yaw, CLOSED),
              lambda p, n: bool(np.linalg.norm(p.obj_pos[:2] - goal) < 0.02), timeout=150, holding=True),
        Phase("lower", lambda p: (lower(p), yaw, CLOSED), lambda p, n: p.obj_pos[2] < scene.goal[2] + 0.13,
              timeout=40, holding=True),
        Phase("release", lambda p: (lower(p), yaw, OPEN), after(4 + s.close_steps // 2)),
        Phase("leave", lambda p: (np.concatenate([p.eef_pos[:2], [carry_z + 0.05]]), yaw, OPEN), after(10**9)),
    ]


def square_phases(start: Poses, scene: Scene, s: Style) -> list[Phase]:
    """Square: grasp the nut's handle, turn the nut square to the peg over it, lower it down the peg, let go."""
    nut_yaw = yaw_of(start.obj_quat)
    grip_yaw = nearest_equivalent(nut_yaw, start.yaw, np.pi)  # fingers across the handle

    def handle(p: Poses) -> np.ndarray:
        return p.obj_pos + rot_z(yaw_of(p.obj_quat)) @ np.array([SQUARE_HANDLE, 0.0, 0.0]) + s.jitter * [1, 1, 0]

    above = lambda p: handle(p) + np.array([0.0, 0.0, s.hover])  # noqa: E731
    peg_top = scene.goal[2] + 0.1  # the peg's box is 0.1 m tall above its body
    carry_z = peg_top + 0.06 + s.carry

    def square_yaw(p: Poses) -> float:  # the gripper heading that turns the nut to the nearest quarter turn
        nut = yaw_of(p.obj_quat)
        return p.yaw + (np.round(nut / (np.pi / 2)) * (np.pi / 2) - nut)

    def over_peg(p: Poses, z: float) -> np.ndarray:  # the gripper where the nut's centre sits over the peg
        return np.concatenate([scene.goal[:2] + p.eef_pos[:2] - p.obj_pos[:2], [z]])

    aligned = lambda p, n: bool(np.linalg.norm(p.obj_pos[:2] - scene.goal[:2]) < 0.004  # noqa: E731
                                and abs(p.eef_pos[2] - carry_z) < 0.02 and n > 5)
    down_z = scene.goal[2] + 0.05  # the gripper aims below where the nut can go: the peg stops it
    return [
        Phase("approach", lambda p: (above(p), grip_yaw, OPEN),
              lambda p, n: bool(np.linalg.norm(p.eef_pos - above(p)) < 0.015 and abs(wrap(p.yaw - grip_yaw)) < 0.05)),
        Phase("descend", lambda p: (handle(p), grip_yaw, OPEN), near(handle, 0.006)),
        Phase("grasp", lambda p: (handle(p), grip_yaw, CLOSED), after(s.close_steps)),
        Phase("lift", lambda p: (np.concatenate([p.eef_pos[:2], [carry_z]]), grip_yaw, CLOSED),
              lambda p, n: p.eef_pos[2] > carry_z - 0.02, holding=True),
        Phase("align", lambda p: (over_peg(p, carry_z), square_yaw(p), CLOSED), aligned, holding=True),
        # once the nut is a few cm down the peg it is let go: pushed by its handle it tilts and jams
        Phase("insert", lambda p: (over_peg(p, down_z), square_yaw(p), CLOSED),
              lambda p, n: p.obj_pos[2] < scene.goal[2] + 0.06, timeout=40, holding=True),
        Phase("release", lambda p: (p.eef_pos, None, OPEN), after(4 + s.close_steps // 2)),
        Phase("leave", lambda p: (np.concatenate([p.eef_pos[:2], [carry_z]]), None, OPEN), after(10**9)),
    ]


# ---------------------------------------------------------------- Transport: two arms, one phase machine each


@dataclass(frozen=True)
class TransportPoses(Poses):
    """One arm's view of a Transport observation (59,): its own pose (Poses' fields, the payload as the object)
    plus the other arm's and the scene's. Layout: robot0 and robot1 each eef_pos (3), eef_quat (4),
    gripper_qpos (2); then robosuite's object state: payload pos, quat; trash pos, quat; lid handle pos, quat;
    target bin pos; trash bin pos; four gripper-to-object vectors (12); payload_in_target_bin;
    trash_in_trash_bin."""

    other_eef_pos: np.ndarray  # (3,)
    other_gripper: np.ndarray  # (2,)
    trash_pos: np.ndarray  # (3,)
    trash_quat: np.ndarray  # (4,)
    lid_pos: np.ndarray  # (3,) the lid's handle
    lid_quat: np.ndarray  # (4,)
    target_bin: np.ndarray  # (3,) the target bin's base
    trash_bin: np.ndarray  # (3,)
    trash_done: bool  # the trash touches the trash bin's base

    @classmethod
    def of_arm(cls, obs: np.ndarray, arm: int) -> TransportPoses:
        me, other = 9 * arm, 9 * (1 - arm)
        return cls(obs[me:me + 3], obs[me + 3:me + 7], obs[me + 7:me + 9], obs[18:21], obs[21:25],
                   obs[other:other + 3], obs[other + 7:other + 9], obs[25:28], obs[28:32], obs[32:35],
                   obs[35:39], obs[39:42], obs[42:45], bool(obs[58] > 0.5))

    @property
    def opening(self) -> float:
        return float(self.gripper[0] - self.gripper[1])

    @property
    def other_opening(self) -> float:
        return float(self.other_gripper[0] - self.other_gripper[1])


# The hammer (payload) can pivot in a grip across its handle (its contacts have no torsional friction): held by
# the handle's end GIVE_AT from its centre (away from the head), it may swing to hang head down or stay near
# level. At the handover robot0's fingertips are at GIVE and close along x, so the handle stays in the y-z plane
# whichever way it hangs; robot1's fingers close along x too, across any handle in that plane: it lines up
# behind and above the handle's point TAKE_AT from the centre (near the centre of mass, 0.053 m towards the
# head), gripper pointing down and along -y, closes in along its gripper's axis and takes it.
GIVE_AT, TAKE_AT = -0.085, 0.03
GIVE = np.array([0.0, 0.0, 1.25])
TAKE_WAIT = 0.1  # how far back along its gripper's axis robot1 lines up before closing in on the handle (m)
HOLDING_HANDLE = 0.045  # finger opening (m) below which a gripper is shut on the 3 cm handle (open: 0.08)
OPENED = 0.06  # finger opening (m) above which a gripper has let go
LID_DROP = np.array([-0.2, -0.45])  # where robot0 puts the lid down: the free half of its table
CLEAR_Z = 1.12  # carry height of the lid and the trash: their bottoms above the bins' walls (tops at 0.95 m)
# robot1's gripper pointing down at heading -90 degrees (fingers closing along world x), and that tilted 45
# degrees about world x to point down and along -y: level would need more wrist (joint 6) than the Panda has.
R_CARRY = rot_z(-np.pi / 2) @ R_DOWN
R_TAKE = np.array([[1.0, 0.0, 0.0], [0.0, np.sqrt(0.5), np.sqrt(0.5)], [0.0, -np.sqrt(0.5), np.sqrt(0.5)]]) @ R_CARRY


def handle_axis(p: Poses) -> np.ndarray:
    """(3,) unit vector along the hammer's handle, towards its head (the payload's local z)."""
    return quat_to_mat(p.obj_quat)[:, 2]


def handle_point(p: Poses, at: float) -> np.ndarray:
    """(3,) the point of the handle's axis `at` metres from its centre towards the head."""
    return p.obj_pos + at * handle_axis(p)


def handle_yaw(p: Poses) -> float:
    """The heading (gripper pointing down) whose fingers close across the handle, nearest the current one."""
    axis = handle_axis(p)
    return nearest_equivalent(float(np.arctan2(axis[1], axis[0])), p.yaw, np.pi)


def transport_giver_phases(start: TransportPoses, s: Style) -> list[Phase]:
    """robot0: lift the lid off the start bin and put it down beside it, grasp the hammer's handle by its end,
    lift it (it swings to hang head down), hold it at the handover point until robot1 has it, let go."""
    phases: list[Phase] = []
    if start.lid_pos[2] > 0.94 and np.linalg.norm(start.lid_pos[:2] - start.obj_pos[:2]) < 0.06:
        lid_yaw = nearest_equivalent(yaw_of(start.lid_quat) + np.pi / 2, start.yaw, np.pi)  # across the handle
        lid = lambda p: p.lid_pos + s.jitter * [1, 0.5, 0] + [0, 0, 0.005]  # noqa: E731
        above_lid = lambda p: lid(p) + [0, 0, s.hover]  # noqa: E731
        drop = np.concatenate([LID_DROP + s.jitter[:2] * 3, [0.9 + s.carry / 2]])
        aside = np.concatenate([drop[:2], [CLEAR_Z]])
        phases += [
            Phase("lid approach", lambda p: (above_lid(p), lid_yaw, OPEN), near(above_lid, 0.01, 0.02), timeout=80),
            Phase("lid descend", lambda p: (lid(p), lid_yaw, OPEN), near(lid, 0.006, 0.008), timeout=40),
            Phase("lid grasp", lambda p: (lid(p), lid_yaw, CLOSED), after(s.close_steps)),
            Phase("lid lift", lambda p: (np.concatenate([lid(p)[:2], [CLEAR_Z]]), lid_yaw, CLOSED),
                  lambda p, n: p.lid_pos[2] > CLEAR_Z - 0.06, timeout=60, holding=True),
            Phase("lid aside", lambda p: (aside, lid_yaw, CLOSED), near(lambda p: aside, 0.03, 0.05), timeout=80,
                  holding=True),
            Phase("lid lower", lambda p: (drop, lid_yaw, CLOSED), near(lambda p: drop, 0.02), timeout=40,
                  holding=True),
            Phase("lid release", lambda p: (drop, lid_yaw, OPEN), after(4 + s.close_steps // 2)),
            Phase("lid clear", lambda p: (np.concatenate([p.eef_pos[:2], [CLEAR_Z]]), lid_yaw, OPEN),
                  lambda p, n: p.eef_pos[2] > CLEAR_Z - 0.03, timeout=40),
        ]
    grip = lambda p: handle_point(p, GIVE_AT) + s.jitter * [1, 1, 0.5] + [0, 0, 0.004]  # noqa: E731
    above = lambda p: grip(p) + [0, 0, s.hover]  # noqa: E731
    over = lambda p: np.concatenate([grip(p)[:2], [CLEAR_Z - 0.04]])  # noqa: E731  (clear of the bin's walls)
    give_yaw = lambda p: nearest_equivalent(np.pi / 2, p.yaw, np.pi)  # noqa: E731  (fingers along x)
    give = GIVE + s.jitter * [1, 2, 1]
    hold: dict[str, np.ndarray] = {}

    def straight_up(p: TransportPoses) -> np.ndarray:  # lifted where it grasped: the head drags on the bin's base
        hold.setdefault("xy", p.eef_pos[:2].copy())
        return np.concatenate([hold["xy"], [give[2]]])

    taken = lambda p, n: bool(np.linalg.norm(p.other_eef_pos - handle_point(p, TAKE_AT)) < 0.02  # noqa: E731
                              and p.other_opening < HOLDING_HANDLE and n > 5)
    return phases + [
        Phase("hammer over", lambda p: (over(p), handle_yaw(p), OPEN),
              lambda p, n: bool(np.linalg.norm(p.eef_pos[:2] - over(p)[:2]) < 0.015
                                and abs(wrap(p.yaw - handle_yaw(p))) < 0.05), timeout=100),
        Phase("hammer approach", lambda p: (above(p), handle_yaw(p), OPEN), near(above, 0.01, 0.015), timeout=60),
        Phase("hammer descend", lambda p: (grip(p), handle_yaw(p), OPEN), near(grip, 0.006, 0.008), timeout=40),
        Phase("hammer grasp", lambda p: (grip(p), handle_yaw(p), CLOSED), after(s.close_steps)),
        Phase("hammer lift", lambda p: (straight_up(p), None, CLOSED), lambda p, n: p.eef_pos[2] > give[2] - 0.03,
              timeout=80, holding=True),
        Phase("hammer carry", lambda p: (give, give_yaw(p), CLOSED), near(lambda p: give, 0.015), timeout=120,
              holding=True, speed=0.5),  # slowly: the hanging hammer swings with every jerk, and nothing damps it
        Phase("present", lambda p: (give, give_yaw(p), CLOSED), taken, holding=True),
        Phase("let go", lambda p: (give, give_yaw(p), OPEN), after(6 + s.close_steps // 2)),
        Phase("back off", lambda p: (give + [0.0, -0.15, 0.03], None, OPEN), after(10**9)),
    ]


def transport_taker_phases(start: TransportPoses, s: Style) -> list[Phase]:
    """robot1: take the trash out of the target bin and drop it in the trash bin, wait level beside the
    handover point, close on the hanging hammer's handle once robot0 presents it, carry it over the target bin,
    lower it and let go."""
    phases: list[Phase] = []
    if not start.trash_done:
        trash_yaw = nearest_equivalent(yaw_of(start.trash_quat), start.yaw, np.pi / 2)
        trash = lambda p: p.trash_pos + s.jitter * [1, 1, 0.5]  # noqa: E731
        above_trash = lambda p: trash(p) + [0, 0, s.hover]  # noqa: E731
        over_trash = lambda p: np.concatenate([trash(p)[:2], [CLEAR_Z - 0.04]])  # noqa: E731
        over_bin = lambda p: np.concatenate([p.trash_bin[:2] + s.jitter[:2] * 3, [1.02 + s.carry / 2]])  # noqa: E731
        phases += [
            Phase("trash over", lambda p: (over_trash(p), trash_yaw, OPEN),
                  lambda p, n: bool(np.linalg.norm(p.eef_pos[:2] - over_trash(p)[:2]) < 0.015
                                    and abs(wrap(p.yaw - trash_yaw)) < 0.08), timeout=100),
            Phase("trash approach", lambda p: (above_trash(p), trash_yaw, OPEN), near(above_trash, 0.01, 0.015),
                  timeout=60),
            Phase("trash descend", lambda p: (trash(p), trash_yaw, OPEN), near(trash, 0.006, 0.008), timeout=40),
            Phase("trash grasp", lambda p: (trash(p), trash_yaw, CLOSED), after(s.close_steps)),
            Phase("trash lift", lambda p: (np.concatenate([trash(p)[:2], [CLEAR_Z]]), trash_yaw, CLOSED),
                  lambda p, n: p.eef_pos[2] > CLEAR_Z - 0.03, timeout=60, holding=True),
            Phase("trash carry", lambda p: (np.concatenate([over_bin(p)[:2], [CLEAR_Z]]), trash_yaw, CLOSED),
                  near(lambda p: np.concatenate([over_bin(p)[:2], [CLEAR_Z]]), 0.02, 0.05), timeout=100,
                  holding=True),
            Phase("trash lower", lambda p: (over_bin(p), trash_yaw, CLOSED), near(over_bin, 0.02), timeout=30,
                  holding=True),
            Phase("trash drop", lambda p: (over_bin(p), trash_yaw, OPEN), after(4 + s.close_steps // 2)),
        ]
    take = lambda p: handle_point(p, TAKE_AT) + s.jitter * [1, 0, 1]  # noqa: E731
    # where its fingertips line up before closing in along its gripper's axis (down and along -y)
    line_up = lambda p: take(p) - TAKE_WAIT * R_TAKE[:, 2]  # noqa: E731
    aim: dict[str, np.ndarray] = {}

    def closing(p: TransportPoses) -> np.ndarray:
        """The live point, no higher than 1 cm over where it was once lined up: a finger that nudges the handle up
        would otherwise drag its own target along."""
        first = aim.setdefault("take", take(p))
        now = take(p)
        return np.concatenate([now[:2], [min(now[2], first[2] + 0.01)]])

    # it waits clear of the hammer's way in, behind and above where the handle will be
    wait = GIVE + [0.0, 0.22, -0.05] + s.jitter * [1, 0, 1]
    # presented: robot0 at the handover point, the handle in the y-z plane (the one robot1's fingers close across)
    presented = lambda p, n: bool(np.linalg.norm(p.other_eef_pos - GIVE) < 0.03  # noqa: E731
                                  and abs(handle_axis(p)[0]) < 0.35 and n > 5)
    released = lambda p, n: p.other_opening > OPENED and n >= s.close_steps  # noqa: E731
    goal = lambda p: p.target_bin[:2] + s.jitter[:2] * 3  # noqa: E731
    carry_z = CLEAR_Z + 0.04 + s.carry / 2  # the hanging hammer's head ~0.12 m below the hand
    over = lambda p: np.concatenate([goal(p) + p.eef_pos[:2] - p.obj_pos[:2], [carry_z]])  # noqa: E731
    # lowered until the head is a few cm above the bin's base (the handle's centre 0.15 m above the head's end)
    drop_z = lambda p: p.target_bin[2] + 0.03 + 0.15 + 0.03 + p.eef_pos[2] - p.obj_pos[2]  # noqa: E731
    lower = lambda p: np.concatenate([over(p)[:2], [drop_z(p)]])  # noqa: E731
    return phases + [
        Phase("wait", lambda p: (wait, R_TAKE, OPEN), presented),
        Phase("line up", lambda p: (line_up(p), R_TAKE, OPEN), near(line_up, 0.015), timeout=60),
        Phase("close in", lambda p: (closing(p), R_TAKE, OPEN), near(closing, 0.008, 0.008), timeout=60),
        Phase("take", lambda p: (closing(p), R_TAKE, CLOSED), released),
        Phase("carry", lambda p: (over(p), R_CARRY, CLOSED),
              lambda p, n: bool(np.linalg.norm(p.obj_pos[:2] - goal(p)) < 0.02), timeout=150, holding=True),
        Phase("lower", lambda p: (lower(p), R_CARRY, CLOSED), near(lower, 0.02, 0.01), timeout=60, holding=True),
        Phase("release", lambda p: (lower(p), R_CARRY, OPEN), after(4 + s.close_steps // 2)),
        Phase("leave", lambda p: (np.concatenate([p.eef_pos[:2], [carry_z]]), R_CARRY, OPEN),
              after(10**9)),
    ]


@dataclass
class TwoArmMachine:
    """Transport's maker: one phase machine per arm, each reading the whole observation (its own arm, the
    other arm, the objects), so they coordinate through what they see, as a policy would."""

    arms: tuple[PhaseMachine, PhaseMachine]

    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs (59,) -> action (14,): robot0's 7 then robot1's."""
        return np.concatenate([arm.act(obs) for arm in self.arms])

    @property
    def style(self) -> Style:
        return self.arms[0].style

    @property
    def phase(self) -> str:
        return " | ".join(arm.phase for arm in self.arms)


PHASES: dict[str, Callable[[Poses, Scene, Style], list[Phase]]] = {
    "lift": lift_phases, "can": can_phases, "square": square_phases}


TRANSPORT_ARMS = (transport_giver_phases, transport_taker_phases)


def make_maker(task: str, first_obs: np.ndarray, scene: Scene,
               rng: np.random.Generator) -> PhaseMachine | TwoArmMachine:
    """The phase machine of one episode: its style drawn from rng, its plan from the first observation."""
    if task == "transport":
        styles = [Style.draw(rng, task) for _ in TRANSPORT_ARMS]
        return TwoArmMachine(tuple(
            PhaseMachine(lambda poses, plan=plan, style=style: plan(poses, style), style, rng,
                         read=lambda obs, arm=arm: TransportPoses.of_arm(obs, arm))
            for arm, (plan, style) in enumerate(zip(TRANSPORT_ARMS, styles, strict=True))))
    style = Style.draw(rng, task)
    return PhaseMachine(lambda poses: PHASES[task](poses, scene, style), style, rng)


# ---------------------------------------------------------------- episodes and the dataset


def episode_seeds(seed: int, attempt: int) -> tuple[int, np.random.Generator]:
    """Attempt k of a run with this seed: the env's reset seed and the maker's generator."""
    seq = np.random.SeedSequence([seed, attempt])
    return int(seq.generate_state(1)[0]), np.random.default_rng(seq)


@dataclass(frozen=True)
class Episode:
    reset_seed: int
    states: np.ndarray  # (T, Do) raw observations before each action
    actions: np.ndarray  # (T, Da) in [-1, 1]
    rewards: np.ndarray  # (T,) robosuite's sparse reward after each action
    success: bool


def run_episode(env: object, task: str, reset_seed: int, rng: np.random.Generator, max_steps: int) -> Episode:
    """One attempt of the maker on a RobomimicLowdimEnv (shared/data/robomimic.py)."""
    obs, _ = env.reset(seed=reset_seed)  # type: ignore[attr-defined]
    maker = make_maker(task, obs, scene_of(task, env.robosuite_env), rng)  # type: ignore[attr-defined]
    states, actions, rewards = [], [], []
    settle = None
    for _ in range(max_steps):
        action = maker.act(obs)
        states.append(obs)
        actions.append(action)
        obs, reward, _, _, info = env.step(action)  # type: ignore[attr-defined]
        rewards.append(reward)
        if settle is None and info["is_success"]:
            settle = maker.style.settle_steps
        elif settle is not None:
            settle -= 1
        if settle == 0:
            break
    return Episode(reset_seed, np.array(states), np.array(actions), np.array(rewards, np.float64),
                   settle is not None and bool(info["is_success"]))


@dataclass(frozen=True)
class DemoSummary:
    task: str
    demos: int
    attempts: int
    lengths: np.ndarray  # (E,)
    seconds: float
    paths: tuple[str, ...]

    @property
    def success_rate(self) -> float:
        return self.demos / self.attempts


def upstream_normalization(states: np.ndarray, actions: np.ndarray) -> dict[str, np.ndarray]:
    """Upstream's min and max: running from 0, so min <= 0 <= max in every dimension."""
    return {"obs_min": np.minimum(0.0, states.min(axis=0)), "obs_max": np.maximum(0.0, states.max(axis=0)),
            "action_min": np.minimum(0.0, actions.min(axis=0)), "action_max": np.maximum(0.0, actions.max(axis=0))}


def dataset_arrays(episodes: list[Episode]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Kept episodes -> (train.npz arrays, normalization.npz arrays), upstream's layout."""
    states = np.concatenate([e.states for e in episodes])  # (N, Do)
    actions = np.concatenate([e.actions for e in episodes])  # (N, Da)
    norm = upstream_normalization(states, actions)
    train = {
        "states": 2 * (states - norm["obs_min"]) / (norm["obs_max"] - norm["obs_min"] + EPS) - 1,
        "actions": 2 * (actions - norm["action_min"]) / (norm["action_max"] - norm["action_min"] + EPS) - 1,
        "rewards": np.concatenate([e.rewards for e in episodes]),
        "terminals": np.zeros(len(states), bool),
        "traj_lengths": np.array([len(e.actions) for e in episodes], np.int64),
    }
    return train, norm


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed's archive with a fixed date on every entry (numpy stamps the current time), so the
    same arrays give the same bytes."""

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, value in arrays.items():
                entry = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(entry, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)

    atomic_write(path, write)




def write_demo_folder(out_dir: str | os.PathLike, train: dict[str, np.ndarray], norm: dict[str, np.ndarray],
                      task: str, seed: int, kept: list[Episode], attempt: int,
                      extra_stats: dict[str, Any] | None = None) -> tuple[Path, np.ndarray]:
    """train.npz, normalization.npz and stats.json (the maker's counts, `extra_stats`, then each kept
    episode's reset seed) in out_dir; returns (the folder, traj_lengths)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_npz(out / "train.npz", train)
    _write_npz(out / "normalization.npz", norm)
    lengths = train["traj_lengths"]
    stats = {"task": task, "seed": seed, "demos": len(kept), "attempts": attempt,
             "maker_success_rate": len(kept) / attempt, "transitions": int(lengths.sum()),
             "length_mean": float(lengths.mean()), "length_min": int(lengths.min()), "length_max": int(lengths.max()),
             **(extra_stats or {}), "reset_seeds": [e.reset_seed for e in kept]}
    atomic_write(out / "stats.json", lambda tmp: Path(tmp).write_text(json.dumps(stats, indent=1) + "\n"))
    return out, lengths

def attempts(env: Any, task: str, seed: int, demos: int, limit: int) -> Iterator[tuple[int, Episode]]:
    """The maker's seeded attempts on `env`, each as (attempts so far, its episode), until `demos` of them have
    succeeded; a ConfigError once `limit` attempts have not got there (a maker that rarely succeeds is broken)."""
    succeeded = attempt = 0
    while succeeded < demos:
        if attempt >= limit:
            raise ConfigError(f"the {task} maker kept {succeeded} of {demos} demonstrations in {attempt} attempts "
                              f"(limit {limit})")
        reset_seed, rng = episode_seeds(seed, attempt)
        episode = run_episode(env, task, reset_seed, rng, MAX_STEPS[task])
        attempt += 1
        succeeded += episode.success
        yield attempt, episode


def make_demos(task: str, demos: int, seed: int, out_dir: str | Path,
               progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Run the task's maker until `demos` successful episodes; write train.npz, normalization.npz, stats.json."""
    from shared.data.robomimic import make_robomimic_env

    if task not in DEMO_TASKS:
        raise ConfigError(f"no demonstration maker for robomimic task {task!r}; choose one of {', '.join(DEMO_TASKS)}")
    limit = 3 * demos + 20  # the makers succeed 95-100% of the time: far fewer means something broke
    start = time.perf_counter()
    env = make_robomimic_env(task, model_seed=seed)
    kept: list[Episode] = []
    attempt = 0
    try:
        for attempt, episode in attempts(env, task, seed, demos, limit):
            if episode.success:
                kept.append(episode)
            if progress is not None:
                progress(f"{task} attempt {attempt}: {'kept' if episode.success else 'failed'} "
                         f"({len(episode.actions)} steps), {len(kept)}/{demos} kept")
    finally:
        env.close()
    train, norm = dataset_arrays(kept)
    out, lengths = write_demo_folder(out_dir, train, norm, task, seed, kept, attempt)
    return DemoSummary(task, len(kept), attempt, lengths, time.perf_counter() - start,
                       tuple(str(out / n) for n in ("train.npz", "normalization.npz", "stats.json")))
