"""What fine-tuning and evaluation configs share: the task, the policy's I/O sizes and the envs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config.reader import SettingError, positive, seed_range, setting
from shared.data.envs import ENV_SUITES, GymSuite
from shared.data.robomimic import (
    DEFAULT_LOW_DIM_KEYS,
    EnvMeta,
    RobomimicImageSuite,
    RobomimicSuite,
    camera_of,
    env_meta_path,
)
from shared.data.robosuite_compat import import_robosuite
from shared.errors import ConfigError


@dataclass(frozen=True)
class LocomotionLowdimConfig:
    """env.wrappers.mujoco_locomotion_lowdim: a gymnasium MuJoCo task (upstream's gym wrapper)."""

    normalization_path: str | None = setting(None, doc="the same file as the top-level normalization_path")

    def suite(self, run: PolicyRunConfig) -> GymSuite:
        return GymSuite()


@dataclass(frozen=True)
class RobomimicLowdimConfig:
    """env.wrappers.robomimic_lowdim: a robomimic task (robosuite 1.4.1) from states (upstream's
    robomimic_lowdim wrapper); its env metadata is the top-level robomimic_env_cfg_path."""

    normalization_path: str | None = setting(None, doc="the same file as the top-level normalization_path")
    low_dim_keys: tuple[str, ...] = setting(
        DEFAULT_LOW_DIM_KEYS, doc="robosuite observations concatenated in this order into the state ('object' is "
                                  "robosuite's object-state)")

    def suite(self, run: PolicyRunConfig) -> RobomimicSuite:
        """The suite with its metadata file found (upstream's relative path or the vendored copy) and robosuite
        loaded, so that a missing file or package is one error here rather than one per env worker."""
        if run.robomimic_env_cfg_path is None:
            raise ConfigError("env.wrappers.robomimic_lowdim needs robomimic_env_cfg_path (the task's env_meta json, "
                              "e.g. cfg/robomimic/env_meta/can.json)")
        path = env_meta_path(run.robomimic_env_cfg_path)
        import_robosuite()
        return RobomimicSuite(str(path.resolve()), self.low_dim_keys, run.seed)


@dataclass(frozen=True)
class RobomimicImageConfig:
    """env.wrappers.robomimic_image: a robomimic task with camera observations (upstream's robomimic_image
    wrapper; env.use_image_obs must be true): the low_dim_keys' state beside the image_keys' frames, uint8,
    channels first, cameras stacked on the channel axis. Its env metadata (an `-img` one) names the cameras
    robosuite renders and their size."""

    normalization_path: str | None = setting(None, doc="the same file as the top-level normalization_path")
    low_dim_keys: tuple[str, ...] = setting(
        ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"),
        doc="robosuite observations concatenated in this order into the state (upstream's default: the arm's "
            "end effector and gripper)")
    image_keys: tuple[str, ...] = setting(
        ("agentview_image", "robot0_eye_in_hand_image"),
        doc="camera frames (<camera>_image) stacked in this order on the channel axis")
    shape_meta: dict | None = setting(
        None, doc="upstream's shape_meta: obs.rgb.shape [3 * cameras, H, W] and obs.state.shape; checked against "
                  "the env metadata's cameras")
    render_quality: str = setting(
        "fast", doc="offscreen render settings: 'fast' (1024 shadow map, no multisampling, no reflections) or "
                    "'robosuite' (its own); data and env must be rendered alike (docs/guide/robomimic_images.md)")

    def suite(self, run: PolicyRunConfig) -> RobomimicImageSuite:
        """The suite, its metadata's cameras checked against image_keys and shape_meta, robosuite loaded with a
        renderer that works (one error here rather than one per env worker)."""
        from shared.data.rendering import render_quality

        if run.robomimic_env_cfg_path is None:
            raise ConfigError("env.wrappers.robomimic_image needs robomimic_env_cfg_path (the task's env_meta json, "
                              "e.g. cfg/robomimic/env_meta/lift-img.json)")
        if not run.env.use_image_obs:
            raise ConfigError("env.wrappers.robomimic_image needs env.use_image_obs: true (robosuite renders no "
                              "cameras otherwise)")
        render_quality(self.render_quality)
        path = env_meta_path(run.robomimic_env_cfg_path)
        meta = EnvMeta.load(path)
        cameras = [camera_of(key) for key in self.image_keys]
        if not set(cameras) <= set(meta.cameras):
            raise ConfigError(f"{path.name} renders {', '.join(meta.cameras)}; image_keys ask for "
                              f"{', '.join(c for c in cameras if c not in meta.cameras)}")
        rgb = ((self.shape_meta or {}).get("obs") or {}).get("rgb")
        expected = [3 * len(cameras), *meta.camera_size]
        if rgb is not None and list(rgb.get("shape", expected)) != expected:
            raise ConfigError(f"shape_meta.obs.rgb.shape {list(rgb['shape'])} is not the frames {path.name} renders "
                              f"for {len(cameras)} camera(s): {expected}")
        import_robosuite(rendering=True)
        return RobomimicImageSuite(str(path.resolve()), self.low_dim_keys, self.image_keys, run.seed,
                                   self.render_quality)


@dataclass(frozen=True)
class MultiStepConfig:
    """env.wrappers.multi_step: action chunks and the observation history (upstream's MultiStep); its
    sizes must be the top-level ones it interpolates in upstream's configs."""

    n_obs_steps: int = setting(1, check=positive, doc="observation history length (= cond_steps)")
    n_action_steps: int = setting(1, check=positive, doc="env steps per policy step (= act_steps)")
    max_episode_steps: int | None = setting(None, check=positive, doc="time limit (= env.max_episode_steps)")
    reset_within_step: bool = setting(
        False, doc="reset an env within the policy step that ended its episode; only true is supported (every "
                   "upstream config sets it)")

    def __post_init__(self) -> None:
        if not self.reset_within_step:
            raise SettingError("reset_within_step", "must be true: the vector envs reset an ended episode within "
                                                    "the step, as every upstream config asks")


# the suite wrappers of EnvWrappersConfig: upstream's wrapper name -> its settings (one per ENV_SUITES entry)
SUITE_WRAPPERS = {"mujoco_locomotion_lowdim": LocomotionLowdimConfig, "robomimic_lowdim": RobomimicLowdimConfig,
                  "robomimic_image": RobomimicImageConfig}
assert set(SUITE_WRAPPERS) == set(ENV_SUITES)


@dataclass(frozen=True)
class EnvWrappersConfig:
    """env.wrappers: one suite wrapper (which environments) and multi_step."""

    mujoco_locomotion_lowdim: LocomotionLowdimConfig | None = setting(None, doc="the envs are gymnasium MuJoCo tasks")
    robomimic_lowdim: RobomimicLowdimConfig | None = setting(None, doc="the envs are robomimic tasks (robosuite)")
    robomimic_image: RobomimicImageConfig | None = setting(
        None, doc="the envs are robomimic tasks with camera observations")
    multi_step: MultiStepConfig | None = setting(None, doc="upstream's chunking wrapper (sizes from the top level)")

    def __post_init__(self) -> None:
        given = [name for name in SUITE_WRAPPERS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"names {' and '.join(given)}; one suite wrapper at most")

    @property
    def suite_wrapper(self) -> LocomotionLowdimConfig | RobomimicLowdimConfig | RobomimicImageConfig:
        """The suite wrapper given, else gymnasium's (configs without wrappers are gym tasks)."""
        given = [getattr(self, name) for name in SUITE_WRAPPERS if getattr(self, name) is not None]
        return given[0] if given else LocomotionLowdimConfig()


@dataclass(frozen=True)
class RayConfig:
    """env.ray: the env workers as Ray actors (dppo/envs/ray_vector.py); the learner stays in this process."""

    address: str | None = setting(
        None, doc="null: start a local Ray instance (one logical CPU per worker, no dashboard) and stop it at the "
                  "end; 'auto', 'HOST:PORT' or 'ray://HOST:PORT': an existing cluster, used as given")
    num_workers: int = setting(1, check=positive, doc="Ray actors; the envs are split among them in order")


@dataclass(frozen=True)
class EnvConfig:
    """The `env` section (upstream's defaults)."""

    n_envs: int = setting(check=positive)
    max_episode_steps: int = setting(check=positive)
    name: str | None = None
    reset_at_iteration: bool = setting(True, doc="reset all envs before every iteration (upstream default)")
    reset_after_eval_iteration: bool = setting(
        False, doc="also reset right after an evaluation iteration (upstream's comment says so, its code never does)")
    asynchronous: bool = setting(False, doc="one process per env (gymnasium AsyncVectorEnv)")
    ray: RayConfig | None = setting(None, doc="run the env workers as Ray actors (e.g. env.ray.num_workers=4)")
    overlap: bool = setting(
        False, doc="fine-tuning steps one half of the envs while the policy samples for the other half (the envs "
                   "in two worker processes, or env.ray's actors split in two groups); same numbers as without, "
                   "to float rounding of the half-batch policy calls")
    wrappers: EnvWrappersConfig = setting(EnvWrappersConfig(), doc="which environments, and their chunks")
    best_reward_threshold_for_success: float | None = setting(
        None, doc="an episode succeeded when its best action chunk's mean reward reaches this (upstream's rule; "
                  "logged as success_rate for suites with a task success)")
    specific: dict | None = None
    use_image_obs: bool = setting(False, doc="robosuite renders camera observations (env.wrappers.robomimic_image)")

    def __post_init__(self) -> None:
        if self.ray is not None and self.asynchronous:
            raise ConfigError("env.asynchronous and env.ray both ask for env worker processes; set one of them")
        if self.overlap and self.asynchronous:
            raise ConfigError("env.overlap runs the envs in its own two worker processes; drop env.asynchronous")
        if self.overlap and self.n_envs < 2:
            raise ConfigError("env.overlap steps one half of the envs beside the other's sampling: it needs "
                              "env.n_envs >= 2")
        if self.overlap and self.ray is not None and self.ray.num_workers < 2:
            raise ConfigError("env.overlap with env.ray splits the actors in two groups: it needs "
                              "env.ray.num_workers >= 2")


@dataclass(frozen=True, kw_only=True)
class PolicyRunConfig:
    """A policy acting in vector envs: the keys fine-tuning and evaluation configs have in common.
    `model` is read by the caller (its type depends on the policy kind); `raw` keeps the mapping."""

    logdir: str
    env_name: str
    obs_dim: int = setting(check=positive)
    action_dim: int = setting(check=positive)
    cond_steps: int = setting(check=positive)
    horizon_steps: int = setting(check=positive)
    act_steps: int = setting(check=positive)
    env: EnvConfig = setting()
    model: Any = setting()
    seed: int = setting(42, check=seed_range)
    base_policy_path: str | None = None
    normalization_path: str | None = None
    robomimic_env_cfg_path: str | None = setting(None, doc="a robomimic task's env_meta json (upstream's path, or "
                                                           "found by its name under data/robomimic/env_meta)")
    denoising_steps: int | None = setting(None, check=positive)
    ft_denoising_steps: int | None = setting(None, check=positive)
    img_cond_steps: int | None = setting(None, check=positive, doc="camera frames the image networks read")
    shape_meta: dict | None = setting(None, doc="upstream's shape_meta (image configs; the camera wrapper checks it)")
    wandb: dict | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.act_steps > self.horizon_steps:
            raise ConfigError(f"act_steps={self.act_steps} cannot exceed horizon_steps={self.horizon_steps}")
        wrappers = self.env.wrappers
        multi = wrappers.multi_step
        pairs = [("env.wrappers.multi_step.n_obs_steps", multi and multi.n_obs_steps, "cond_steps", self.cond_steps),
                 ("env.wrappers.multi_step.n_action_steps", multi and multi.n_action_steps, "act_steps",
                  self.act_steps),
                 ("env.wrappers.multi_step.max_episode_steps", multi and multi.max_episode_steps,
                  "env.max_episode_steps", self.env.max_episode_steps)]
        suite = next((name for name in SUITE_WRAPPERS if getattr(wrappers, name) is not None), None)
        if suite is not None:
            pairs.append((f"env.wrappers.{suite}.normalization_path", wrappers.suite_wrapper.normalization_path,
                          "normalization_path", self.normalization_path))
        for key, value, top, top_value in pairs:
            if value is not None and value != top_value:
                raise ConfigError(f"config key '{key}'={value} disagrees with '{top}'={top_value}")

    @property
    def env_suite(self) -> GymSuite | RobomimicSuite | RobomimicImageSuite:
        """The suite (shared/data/envs.py) that makes this config's environments."""
        return self.env.wrappers.suite_wrapper.suite(self)
