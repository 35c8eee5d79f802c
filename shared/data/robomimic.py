"""robomimic tasks (robosuite 1.4.1: Lift, Can, Square, Transport) from low-dimensional states, as upstream
DPPO runs them (robomimic's EnvRobosuite under env/gym_utils/wrapper/robomimic_lowdim.py), in gymnasium's API.

One env here is one robosuite env built from upstream's env_meta json (vendored unchanged under
data/robomimic/env_meta/) with robomimic's overrides: no renderer, no cameras, object observations on,
`ignore_done` (episodes end only at the time limit), robosuite's hard reset off (upstream turns it off
to save memory; a reset re-places the objects in the same model). Its observation is the concatenation
of the `low_dim_keys` in order ("object" is robosuite's "object-state"), unnormalized; its action is in
robosuite's units. Normalization, action chunks, the observation history and the time limit are the
suite-independent wrappers of shared/data/envs.py. Rewards are robosuite's (sparse: 1 at a step where
the task is done); info["is_success"] is the task check, as robomimic reports it.

Randomness: robosuite draws object placements and the robot's initial joint noise from numpy's global
RNG when it resets, and Lift's cube size when it builds the model; a step draws nothing. Upstream runs one
env per process and seeds that process's global RNG with seed + i; here every env owns a RandomState that
stands in for the global one while the env builds or resets, so envs in one process (SyncVectorEnv) draw
exactly what they would each in their own process, and the process's global RNG is left as it was.
reset(seed=s) is upstream's `seed(s)` followed by a reset. The model (kept for the env's life since hard
resets are off) comes from the state upstream's workers are forked with, the parent's after
`np.random.seed(seed)`, so every env of a run gets the same one; here it is built from RandomState(model_seed),
the run's seed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from shared.data.robosuite_compat import import_robosuite
from shared.errors import ConfigError

ENV_META_DIR = Path(__file__).resolve().parents[2] / "data" / "robomimic" / "env_meta"
# Upstream's low_dim_keys per task (cfg/robomimic/*/<task>/*.yaml): the arm's end effector and gripper, the objects.
ROBOT_KEYS = ("eef_pos", "eef_quat", "gripper_qpos")
DEFAULT_LOW_DIM_KEYS = tuple(f"robot0_{k}" for k in ROBOT_KEYS) + ("object",)
TRANSPORT_LOW_DIM_KEYS = tuple(f"robot{r}_{k}" for r in (0, 1) for k in ROBOT_KEYS) + ("object",)
TASKS = ("lift", "can", "square", "transport")

# What an OSC controller keeps from its episode's start (robosuite/controllers/base_controller.py)
_CONTROLLER_REFERENCES = ("initial_joint", "initial_ee_pos", "initial_ee_ori_mat")
# The kinematics a controller caches (Controller.update). A step recomputes them first (run_controller sets
# new_update), except the first step after a reset: that one uses what the controller computed while the reset
# was still placing things, slightly different from the state the reset ends in, so a snapshot taken right after
# a reset (an evaluation iteration's start) keeps them and the flag.
_CONTROLLER_CACHE = ("ee_pos", "ee_ori_mat", "ee_pos_vel", "ee_ori_vel", "joint_pos", "joint_vel", "J_pos", "J_ori",
                     "J_full", "mass_matrix")
# What robomimic's EnvRobosuite forces on top of the metadata's env_kwargs for state observations.
_STATE_ONLY_KWARGS = {"has_renderer": False, "has_offscreen_renderer": False, "ignore_done": True,
                      "use_object_obs": True, "use_camera_obs": False, "camera_depths": False}
# ... and for camera observations (use_image_obs): the offscreen renderer and the cameras the metadata names.
_CAMERA_KWARGS = {**_STATE_ONLY_KWARGS, "has_offscreen_renderer": True, "use_camera_obs": True}


def env_meta_path(path_or_task: str | Path) -> Path:
    """The env_meta json a config names: the path as given when it exists (upstream's configs say
    cfg/robomimic/env_meta/<task>.json, relative to upstream's checkout), else the vendored file of that
    name, else a task name (lift, can, square, transport) -> its vendored file."""
    path = Path(path_or_task)
    if path.is_file():
        return path
    for candidate in (ENV_META_DIR / path.name, ENV_META_DIR / f"{path.name}.json"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"robomimic env metadata {str(path_or_task)!r} not found (nor a file of that name in "
                      f"{ENV_META_DIR}: {', '.join(sorted(p.stem for p in ENV_META_DIR.glob('*.json')))})")


def default_low_dim_keys(task: str) -> tuple[str, ...]:
    """Upstream's low_dim_keys for a task name (transport has both arms)."""
    return TRANSPORT_LOW_DIM_KEYS if task.startswith("transport") else DEFAULT_LOW_DIM_KEYS


@dataclass(frozen=True)
class EnvMeta:
    """A robomimic env_meta json: robosuite's env class name and its constructor arguments."""

    env_name: str
    env_version: str
    env_kwargs: dict[str, Any]

    @classmethod
    def load(cls, path_or_task: str | Path) -> EnvMeta:
        path = env_meta_path(path_or_task)
        try:
            raw = json.loads(path.read_text())
            return cls(str(raw["env_name"]), str(raw.get("env_version", "")), dict(raw["env_kwargs"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"robomimic env metadata {path} is not an env_meta json ({exc})") from None

    def robosuite_kwargs(self, cameras: bool = False) -> dict[str, Any]:
        """robosuite.make's keyword arguments for state observations, or with `cameras` for camera observations
        too (robomimic's overrides applied)."""
        return {**self.env_kwargs, **(_CAMERA_KWARGS if cameras else _STATE_ONLY_KWARGS)}

    @property
    def cameras(self) -> tuple[str, ...]:
        """The cameras robosuite renders (camera_names; robosuite's default is agentview)."""
        names = self.env_kwargs.get("camera_names", "agentview")
        return (names,) if isinstance(names, str) else tuple(names)

    @property
    def camera_size(self) -> tuple[int, int]:
        """(height, width) of every camera's frame (robosuite's defaults 256 when the metadata has none)."""
        return int(self.env_kwargs.get("camera_heights", 256)), int(self.env_kwargs.get("camera_widths", 256))


class RobomimicLowdimEnv(gym.Env):
    """One robosuite env: observation = the low_dim_keys concatenated (unnormalized), action in robosuite's
    units, terminated/truncated never set here (the time limit wraps it), info["is_success"]."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, meta: EnvMeta, low_dim_keys: tuple[str, ...], model_seed: int = 0) -> None:
        robosuite = import_robosuite(rendering=self.renders)
        self.meta, self.low_dim_keys = meta, tuple(low_dim_keys)
        self.rng = np.random.RandomState(model_seed)  # builds the model; reseeded by reset(seed=...)
        with self.own_global_rng():
            try:
                self.robosuite_env = robosuite.make(meta.env_name, **self._robosuite_kwargs())
            except Exception as exc:  # robosuite raises bare Exceptions for unknown envs and bad kwargs
                raise ConfigError(f"robosuite cannot build {meta.env_name!r} from its env metadata: "
                                  f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            self.robosuite_env.hard_reset = False
            first = self.robosuite_env._get_observations(force_update=True)
        missing = [k for k in self.low_dim_keys if self._raw_key(k) not in first]
        if missing:
            names = sorted({"object", *(k for k in first if not k.endswith("-state") and np.ndim(first[k]) == 1)})
            raise ConfigError(f"robomimic task {meta.env_name} has no observation {', '.join(map(repr, missing))}; "
                              f"low_dim_keys may name {', '.join(names)}")
        low, high = self.robosuite_env.action_spec
        self.observation_space = self._observation_space(first)
        self.action_space = gym.spaces.Box(np.asarray(low, np.float64), np.asarray(high, np.float64),
                                           dtype=np.float64)

    renders = False  # makes camera observations (needs an offscreen OpenGL backend)

    def _robosuite_kwargs(self) -> dict[str, Any]:
        return self.meta.robosuite_kwargs()

    def _observation_space(self, first: dict[str, np.ndarray]) -> gym.spaces.Space:
        return gym.spaces.Box(-np.inf, np.inf, (self._flat(first).shape[0],), np.float64)

    def _observe(self, raw: dict[str, np.ndarray]) -> Any:
        """robosuite's observation dict -> this env's observation."""
        return self._flat(raw)

    @staticmethod
    def _raw_key(key: str) -> str:
        return "object-state" if key == "object" else key

    def _flat(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """robosuite's observation dict -> (Do,) float64, low_dim_keys in order."""
        return np.concatenate([np.asarray(raw[self._raw_key(k)], np.float64).reshape(-1) for k in self.low_dim_keys])

    @contextlib.contextmanager
    def own_global_rng(self) -> Iterator[None]:
        """numpy's global RNG is this env's RandomState for the duration (see the module docstring)."""
        outside = np.random.get_state()
        np.random.set_state(self.rng.get_state())
        try:
            yield
        finally:
            self.rng.set_state(np.random.get_state())
            np.random.set_state(outside)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self.rng.seed(seed)
        with self.own_global_rng():
            raw = self.robosuite_env.reset()
        return self._observe(raw), {}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        """action (Da,) in robosuite's units -> (obs (Do,), reward, False, False, {"is_success"}). A step draws
        no random numbers (the metadata configures no observation noise or delay; a test checks it), so it
        runs without the RNG swap (4 copies of the generator's state: 2.6 ms of a 71 ms step on a busy machine)."""
        raw, reward, _, _ = self.robosuite_env.step(np.asarray(action, np.float64))
        success = bool(self.robosuite_env._check_success())
        return self._observe(raw), float(reward), False, False, {"is_success": success}

    def close(self) -> None:
        self.robosuite_env.close()

    # Everything the next steps and resets depend on, as flat arrays (checkpoints keep it for an exact resume):
    # MuJoCo's integration state, the clock, the grippers' incremental commands, robosuite's observation
    # machinery (each observable's sampling timer and last value, the sensors' shared cache: what a step
    # returns was sampled during its substeps), the controllers' episode references (OSC pulls the arm's null
    # space toward the joint configuration the episode started from) and this env's RNG. A controller's goal
    # is set anew at every step (the current pose plus the action's delta) from kinematics it recomputes.
    def snapshot(self) -> dict[str, np.ndarray]:
        import mujoco

        rs = self.robosuite_env
        model, data = rs.sim.model._model, rs.sim.data._data
        kind = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(model, kind))
        mujoco.mj_getState(model, data, physics, kind)
        _, keys, pos, has_gauss, gauss = self.rng.get_state()
        out = {"mujoco": physics, "clock": np.array([rs.timestep, rs.cur_time, rs.done], np.float64),
               **{f"gripper.{i}": np.array(r.gripper.current_action) for i, r in enumerate(rs.robots)},
               "controllers": np.concatenate([np.ravel(getattr(r.controller, name)) for r in rs.robots
                                              for name in _CONTROLLER_REFERENCES]),
               "controller_fresh": np.array([r.controller.new_update for r in rs.robots], np.float64),
               "controller_cache": np.concatenate([np.ravel(getattr(r.controller, name)) for r in rs.robots
                                                   for name in _CONTROLLER_CACHE]),
               "rng_keys": np.asarray(keys), "rng_rest": np.array([pos, has_gauss, gauss], np.float64)}
        for name, ob in rs._observables.items():
            out[f"observable.{name}"] = np.asarray(ob._current_observed_value)
            out[f"observable_timer.{name}"] = np.array([ob._time_since_last_sample, ob._sampled, ob._current_delay])
        for name, value in rs._obs_cache.items():
            out[f"cache.{name}"] = np.asarray(value)
        return out

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of snapshot, on an env built from the same metadata and seed."""
        import mujoco

        rs = self.robosuite_env
        model, data = rs.sim.model._model, rs.sim.data._data
        mujoco.mj_setState(model, data, np.asarray(state["mujoco"], np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(model, data)
        timestep, cur_time, done = state["clock"]
        rs.timestep, rs.cur_time, rs.done = int(timestep), float(cur_time), bool(done)
        references = np.asarray(state["controllers"], np.float64)
        cache = np.asarray(state.get("controller_cache", ()), np.float64)
        fresh = np.asarray(state.get("controller_fresh", np.ones(len(rs.robots))), np.float64)
        for i, r in enumerate(rs.robots):
            # (1,) until the gripper's first command, (2,) after
            r.gripper.current_action = np.array(state[f"gripper.{i}"], np.float64)
            references = _set_arrays(r.controller, _CONTROLLER_REFERENCES, references)
            # a snapshot without the cache (older checkpoints) is from within an episode: recompute at the next goal
            r.controller.new_update = bool(fresh[i]) or cache.size == 0
            if cache.size:
                cache = _set_arrays(r.controller, _CONTROLLER_CACHE, cache)
        pos, has_gauss, gauss = state["rng_rest"]
        self.rng.set_state(("MT19937", np.asarray(state["rng_keys"], np.uint32), int(pos), int(has_gauss),
                            float(gauss)))
        for name, ob in rs._observables.items():
            value = np.array(state[f"observable.{name}"])
            ob._current_observed_value = value[()] if value.ndim == 0 else value
            since, sampled, delay = state[f"observable_timer.{name}"]
            ob._time_since_last_sample, ob._sampled, ob._current_delay = float(since), bool(sampled), float(delay)
        rs._obs_cache = {key.split(".", 1)[1]: np.array(value) for key, value in state.items()
                         if key.startswith("cache.")}


def camera_of(image_key: str) -> str:
    """robomimic's observation key of a camera's frame -> the camera ('agentview_image' -> 'agentview')."""
    if not image_key.endswith("_image"):
        raise ConfigError(f"image key {image_key!r} is not a camera frame (robomimic names them <camera>_image)")
    return image_key[: -len("_image")]


class RobomimicImageEnv(RobomimicLowdimEnv):
    """One robosuite env with camera observations, as upstream's robomimic_image wrapper sees it through
    robomimic's EnvRobosuite (use_image_obs): observation = {"state": the low_dim_keys concatenated (Ds,)
    float64, unnormalized; "rgb": the image_keys' frames stacked on the channel axis (3 * cameras, H, W)
    uint8}. The cameras and their size are the env metadata's (camera_names, camera_heights/widths).

    Frames: robosuite renders in OpenGL's convention (the first row is the bottom of the picture); robomimic
    flips every frame upright (rows reversed) and moves channels first, then scales it to float [0, 1] and
    upstream's wrapper multiplies by 255 again, so upstream's network gets the frame's 0-255 values (within
    float32 rounding) and divides them itself (its ViT: x / 255 - 0.5). Here the frame stays uint8 from the
    renderer to the network, upright, channels first, RGB; the network does that scaling in the same place.
    """

    renders = True

    def __init__(self, meta: EnvMeta, low_dim_keys: tuple[str, ...], image_keys: tuple[str, ...],
                 model_seed: int = 0, quality: str = "fast") -> None:
        from shared.data.rendering import apply_render_quality, render_quality

        if "tensorflow" in sys.modules:  # measured: Mesa's software EGL crashes the process (SIGSEGV) beside TF
            raise ConfigError("camera envs cannot render in a process that has loaded TensorFlow (Mesa's software "
                              "OpenGL and TensorFlow's libraries clash: the process would crash); build them in env "
                              "worker processes (env.asynchronous: true) or in a process without TensorFlow")
        self.image_keys = tuple(image_keys)
        if not self.image_keys:
            raise ConfigError("camera observations need at least one image key (e.g. agentview_image)")
        missing = [k for k in self.image_keys if camera_of(k) not in meta.cameras]
        if missing:
            raise ConfigError(f"robomimic env metadata for {meta.env_name} renders {', '.join(meta.cameras)}, not "
                              f"{', '.join(camera_of(k) for k in missing)} (image_keys {', '.join(self.image_keys)})")
        self.quality = render_quality(quality)
        super().__init__(meta, low_dim_keys, model_seed)
        apply_render_quality(self.robosuite_env, self.quality)
        self.frames = 0  # camera frames rendered (each reset and step renders every camera once)

    def _robosuite_kwargs(self) -> dict[str, Any]:
        return self.meta.robosuite_kwargs(cameras=True)

    # robosuite renders with whichever OpenGL context is current and makes its own current only when it creates
    # it: with several camera envs in one process (a SyncVectorEnv), each must make its context current before
    # robosuite renders, or it draws with another env's context (garbage frames).
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        self.robosuite_env.sim._render_context_offscreen.gl_ctx.make_current()
        return super().reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        self.robosuite_env.sim._render_context_offscreen.gl_ctx.make_current()
        return super().step(action)

    def _observation_space(self, first: dict[str, np.ndarray]) -> gym.spaces.Space:
        height, width = self.meta.camera_size
        state = gym.spaces.Box(-np.inf, np.inf, (self._flat(first).shape[0],), np.float64)
        rgb = gym.spaces.Box(0, 255, (3 * len(self.image_keys), height, width), np.uint8)
        return gym.spaces.Dict({"state": state, "rgb": rgb})

    def _observe(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """robosuite's dict -> {"state": (Ds,) float64, "rgb": (3 * cameras, H, W) uint8}."""
        self.frames += len(self.image_keys)
        # (H, W, 3) bottom row first -> upright -> (3, H, W); cameras in image_keys order on the channel axis
        rgb = np.concatenate([np.asarray(raw[k], np.uint8)[::-1].transpose(2, 0, 1) for k in self.image_keys])
        return {"state": self._flat(raw), "rgb": np.ascontiguousarray(rgb)}


def _set_arrays(controller: Any, names: tuple[str, ...], flat: np.ndarray) -> np.ndarray:
    """Set the controller's arrays `names` from the front of `flat`, each in its current shape and memory order
    (robosuite's Jacobians and mass matrix are Fortran-ordered, and the order changes how the controller's
    matrix products round); returns the rest."""
    for name in names:
        value = np.empty_like(np.asarray(getattr(controller, name), np.float64))  # same shape and order
        value[...] = flat[:value.size].reshape(value.shape)
        setattr(controller, name, value)
        flat = flat[value.size:]
    return flat


@dataclass(frozen=True)
class RobomimicSuite:
    """The robomimic suite of shared/data/envs.py: a task's env_meta json, its observation keys and the seed
    its models are built with (the run's seed, as upstream)."""

    env_meta: str
    low_dim_keys: tuple[str, ...]
    model_seed: int = 0
    reports_success = True  # runs log upstream's success rate (env.best_reward_threshold_for_success)
    in_worker_processes = False
    frames_per_step = 0  # camera frames rendered per env step

    def make(self, name: str, max_episode_steps: int) -> gym.Env:
        env = RobomimicLowdimEnv(EnvMeta.load(self.env_meta), self.low_dim_keys, self.model_seed)
        return gym.wrappers.TimeLimit(env, max_episode_steps=max_episode_steps)


@dataclass(frozen=True)
class RobomimicImageSuite:
    """The robomimic suite with camera observations (upstream's robomimic_image wrapper, use_image_obs):
    RobomimicSuite's fields, the image keys and the render quality (shared/data/rendering.py)."""

    env_meta: str
    low_dim_keys: tuple[str, ...]
    image_keys: tuple[str, ...]
    model_seed: int = 0
    quality: str = "fast"
    reports_success = True
    # Mesa's software EGL crashes a process that has loaded TensorFlow: camera envs always run in worker processes
    in_worker_processes = True

    @property
    def frames_per_step(self) -> int:
        """Camera frames rendered per env step: one per image key."""
        return len(self.image_keys)

    def spaces(self, state_dim: int, action_dim: int) -> tuple[gym.spaces.Dict, gym.spaces.Box]:
        """(observation space, action space) of one raw env, from the metadata alone (no robosuite, no
        rendering): {"state": (state_dim,) float32, "rgb": (3 * cameras, H, W) uint8}, actions (action_dim,)."""
        height, width = EnvMeta.load(self.env_meta).camera_size
        obs = gym.spaces.Dict({"state": gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
                               "rgb": gym.spaces.Box(0, 255, (3 * len(self.image_keys), height, width), np.uint8)})
        return obs, gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

    def make(self, name: str, max_episode_steps: int) -> gym.Env:
        env = RobomimicImageEnv(EnvMeta.load(self.env_meta), self.low_dim_keys, self.image_keys, self.model_seed,
                                self.quality)
        return gym.wrappers.TimeLimit(env, max_episode_steps=max_episode_steps)


def make_robomimic_env(task: str, low_dim_keys: tuple[str, ...] | None = None,
                       model_seed: int = 0) -> RobomimicLowdimEnv:
    """A task's raw env from its vendored metadata (lift, can, square, transport), upstream's keys by default."""
    return RobomimicLowdimEnv(EnvMeta.load(task), low_dim_keys or default_low_dim_keys(task), model_seed)


def make_robomimic_image_env(task: str, image_keys: tuple[str, ...] | None = None,
                             low_dim_keys: tuple[str, ...] | None = None, model_seed: int = 0,
                             quality: str = "fast") -> RobomimicImageEnv:
    """A task's raw env with cameras from its vendored `<task>-img` metadata (upstream's image keys: every
    camera the metadata renders), upstream's low_dim_keys by default."""
    meta = EnvMeta.load(task if task.endswith("-img") else f"{task}-img")
    keys = image_keys or tuple(f"{camera}_image" for camera in meta.cameras)
    return RobomimicImageEnv(meta, low_dim_keys or default_low_dim_keys(task.removesuffix("-img")), keys,
                             model_seed, quality)
