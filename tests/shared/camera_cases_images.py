"""Camera observations of the robomimic tasks (shared/data/robomimic.py RobomimicImageEnv, shared/data/rendering.py)
and the frames grid (shared/data/frames.py): the frames are the scene as upstream's pipeline (robomimic's
EnvRobosuite, upstream's robomimic_image wrapper) gives it, upright and RGB, uint8 channels first, beside the
proprioceptive state; multi_step keeps a history of both; the OpenGL backend is chosen or refused in one line."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

from shared.data import rendering
from shared.data.dataset import Normalization
from shared.data.envs import EnvSpec, make_env
from shared.data.frames import frame_grid
from shared.data.robomimic import EnvMeta, RobomimicImageEnv, RobomimicImageSuite, env_meta_path
from shared.errors import ConfigError
from shared.settings.run import RobomimicImageConfig

PROPRIO = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")


@pytest.fixture(scope="module")
def lift() -> RobomimicImageEnv:
    """Lift with both of robomimic's usual cameras: agentview (the scene from the front) first, then the
    wrist camera upstream's Lift image configs use."""
    meta = EnvMeta.load("lift-img")
    cameras = ["agentview", "robot0_eye_in_hand"]
    meta = dataclasses.replace(meta, env_kwargs={**meta.env_kwargs, "camera_names": cameras})
    env = RobomimicImageEnv(meta, PROPRIO, ("agentview_image", "robot0_eye_in_hand_image"), model_seed=0)
    yield env
    env.close()


def cube_red(frame: np.ndarray) -> np.ndarray:
    """(3, H, W) uint8 -> (H, W) mask of the cube's red (robosuite's Lift cube is rgba 1 0 0 under lights)."""
    r, g, b = frame.astype(int)
    return (r > 120) & (g < 90) & (b < 90) & (r > 2 * g)


def test_observation_is_uint8_frames_beside_the_proprio_state(lift: RobomimicImageEnv) -> None:
    obs, _ = lift.reset(seed=3)
    assert set(obs) == {"state", "rgb"}
    assert obs["rgb"].dtype == np.uint8 and obs["rgb"].shape == (6, 96, 96)
    assert lift.observation_space["rgb"].shape == (6, 96, 96) and lift.observation_space["state"].shape == (9,)
    raw = lift.robosuite_env._get_observations(force_update=True)
    np.testing.assert_array_equal(obs["state"], np.concatenate([raw[k] for k in PROPRIO]))
    # robomimic's EnvRobosuite: robosuite's frame with its rows reversed, then channels first
    np.testing.assert_array_equal(obs["rgb"][:3], raw["agentview_image"][::-1].transpose(2, 0, 1))
    np.testing.assert_array_equal(obs["rgb"][3:], raw["robot0_eye_in_hand_image"][::-1].transpose(2, 0, 1))
    frames = lift.frames
    obs, *_ = lift.step(np.zeros(7))
    assert lift.frames == frames + 2 and obs["rgb"].shape == (6, 96, 96)


def test_frames_are_the_scene_upright_and_rgb(lift: RobomimicImageEnv) -> None:
    obs, _ = lift.reset(seed=5)
    front, wrist = obs["rgb"][:3], obs["rgb"][3:]
    for frame in (front, wrist):
        assert frame.std() > 20  # not blank
    # agentview: the red cube on the table in the middle of the picture, as a few dozen pixels; in BGR order
    # it would be blue and no pixel would pass
    rows, cols = np.nonzero(cube_red(front))
    assert 10 <= rows.size <= 400
    assert 30 <= rows.mean() <= 75 and 30 <= cols.mean() <= 66
    # upright: the white table fills the lower part, the robot and the room behind it are at the top
    # (upside down or transposed, the top rows would be the table)
    luma = front.astype(float).mean(axis=0)  # (H, W)
    assert luma[-24:].mean() > 200 and luma[-24:].mean() - luma[:16].mean() > 40
    # the wrist camera looks down past the open fingers: the hand is the dark band at the bottom, the cube on
    # the white table above it
    wrist_luma = wrist.astype(float).mean(axis=0)
    assert wrist_luma[-8:].mean() < 120 and wrist_luma[:48].mean() > 200
    assert cube_red(wrist)[:80].sum() >= 20


def test_render_quality_fast_sees_the_same_scene(lift: RobomimicImageEnv) -> None:
    """'fast' (1024 shadow map, no multisampling, no reflections) against robosuite's own settings: the same
    frame but for aliased edges (docs/guide/robomimic_images.md)."""
    alone, _ = lift.reset(seed=5)
    default = RobomimicImageEnv(lift.meta, PROPRIO, lift.image_keys, model_seed=0, quality="robosuite")
    try:
        slow, _ = default.reset(seed=5)
        fast, _ = lift.reset(seed=5)
        # two camera envs in one process (as in a SyncVectorEnv) each render with their own GL context
        np.testing.assert_array_equal(fast["rgb"], alone["rgb"])
        np.testing.assert_array_equal(fast["state"], slow["state"])
        diff = np.abs(fast["rgb"].astype(int) - slow["rgb"].astype(int))
        assert diff.mean() < 3.0 and np.mean(diff > 40) < 0.03
        assert cube_red(fast["rgb"][:3]).sum() == pytest.approx(cube_red(slow["rgb"][:3]).sum(), rel=0.25)
        assert lift.robosuite_env.sim.model.vis.quality.shadowsize == 1024
        assert default.robosuite_env.sim.model.vis.quality.shadowsize == 4096
    finally:
        default.close()


def test_multi_step_keeps_a_history_of_state_and_frames_and_restores_it() -> None:
    lo, hi = np.full(9, -2.0), np.full(9, 2.0)
    norm = Normalization(lo, hi, np.full(7, -1.0), np.full(7, 1.0))
    suite = RobomimicImageSuite(str(env_meta_path("lift-img")), PROPRIO, ("robot0_eye_in_hand_image",))
    env = make_env(EnvSpec("lift", 1, 2, 2, 50, norm, False, suite))
    try:
        obs, _ = env.reset(seed=1)
        assert obs["state"].shape == (2, 9) and obs["state"].dtype == np.float32
        assert obs["rgb"].shape == (2, 3, 96, 96) and obs["rgb"].dtype == np.uint8
        np.testing.assert_array_equal(obs["rgb"][0], obs["rgb"][1])  # the first frame repeated after a reset
        raw = env.unwrapped.robosuite_env._get_observations()
        expected = norm.normalize_obs(np.concatenate([raw[k] for k in PROPRIO])).astype(np.float32)
        np.testing.assert_array_equal(obs["state"][1], expected)
        obs, *_ = env.step(np.full((2, 7), 0.5))
        state = env.sim_state
        after = [env.step(np.full((2, 7), -0.3))[0] for _ in range(2)]
        env.sim_state = state
        again = [env.step(np.full((2, 7), -0.3))[0] for _ in range(2)]
        for a, b in zip(after, again):
            np.testing.assert_array_equal(a["rgb"], b["rgb"])
            np.testing.assert_array_equal(a["state"], b["state"])
    finally:
        env.close()


def test_image_keys_and_shape_meta_are_checked_in_one_line() -> None:
    meta = EnvMeta.load("lift-img")
    with pytest.raises(ConfigError, match="renders robot0_eye_in_hand, not agentview"):
        RobomimicImageEnv(meta, PROPRIO, ("agentview_image",))
    with pytest.raises(ConfigError, match="not a camera frame"):
        RobomimicImageEnv(meta, PROPRIO, ("agentview",))
    run = types.SimpleNamespace(robomimic_env_cfg_path="cfg/robomimic/env_meta/lift-img.json", seed=0,
                                env=types.SimpleNamespace(use_image_obs=True))
    wrapper = RobomimicImageConfig(image_keys=("robot0_eye_in_hand_image",),
                                   shape_meta={"obs": {"rgb": {"shape": [3, 84, 84]}, "state": {"shape": [9]}}})
    with pytest.raises(ConfigError, match=r"shape_meta.obs.rgb.shape \[3, 84, 84\] .* \[3, 96, 96\]"):
        wrapper.suite(run)
    with pytest.raises(ConfigError, match="ask for agentview"):
        RobomimicImageConfig().suite(run)  # upstream's default keys: two cameras, the metadata renders one
    with pytest.raises(ConfigError, match="needs env.use_image_obs: true"):
        wrapper.suite(types.SimpleNamespace(**{**vars(run), "env": types.SimpleNamespace(use_image_obs=False)}))
    ok = dataclasses.replace(wrapper, shape_meta={"obs": {"rgb": {"shape": [3, 96, 96]}}}).suite(run)
    assert ok.image_keys == ("robot0_eye_in_hand_image",) and ok.env_meta.endswith("lift-img.json")


def test_gl_backend_is_the_users_or_the_first_that_renders(monkeypatch) -> None:
    tried = []
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setattr(rendering, "gl_works", lambda backend: tried.append(backend) or backend == "osmesa")
    assert rendering.choose_gl_backend(required=True) == "osmesa" and tried == ["egl", "osmesa"]
    import os

    assert os.environ["MUJOCO_GL"] == os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(rendering, "gl_works", lambda backend: False)
    assert rendering.choose_gl_backend(required=False) is None  # state envs never render: no error
    with pytest.raises(ConfigError, match="no offscreen OpenGL backend renders here.*apt-get install libegl1"):
        rendering.choose_gl_backend(required=True)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    with pytest.raises(ConfigError, match="MUJOCO_GL=osmesa does not render here .*libosmesa6"):
        rendering.choose_gl_backend(required=True)


def test_gl_probe_renders_with_the_backend_in_use() -> None:
    import os

    assert rendering.gl_works(os.environ.get("MUJOCO_GL", "egl"))
    assert not rendering.gl_works("no-such-backend")


def test_frame_grid_lays_out_rows_steps_and_cameras() -> None:
    frames = np.zeros((2, 3, 6, 4, 5), np.uint8)  # 2 rows, 3 steps, 2 cameras of 4x5
    frames[1, 2, 3:, :, :] = [[[7]], [[8]], [[9]]]  # second row, last step, second camera
    grid = frame_grid(frames, zoom=2)
    b = 2  # border
    assert grid.shape == (2 * 8 + b, 6 * 10 + 5 * b, 3)
    tile = grid[8 + b:, 5 * (10 + b):]
    assert tile.shape == (8, 10, 3) and (tile == [7, 8, 9]).all()
    assert (grid[8:8 + b] == 255).all() and (grid[..., 0] == 7).sum() == tile[..., 0].size  # nowhere else
    with pytest.raises(ConfigError, match="must be uint8"):
        frame_grid(frames.astype(np.float32))


def test_upstreams_image_env_section_reads_into_the_camera_suite() -> None:
    """The `env` section and shape_meta of upstream's cfg/robomimic/finetune/lift/ft_ppo_diffusion_mlp_img.yaml
    (interpolations resolved) read into the robomimic_image suite."""
    from shared.config.reader import read
    from shared.settings.run import EnvConfig

    shape_meta = {"obs": {"rgb": {"shape": [3, 96, 96]}, "state": {"shape": [9]}}, "action": {"shape": [7]}}
    raw = {"n_envs": 50, "name": "lift", "best_reward_threshold_for_success": 1, "max_episode_steps": 300,
           "save_video": False, "use_image_obs": True,
           "wrappers": {"robomimic_image": {"normalization_path": "data/robomimic/lift-img/normalization.npz",
                                            "low_dim_keys": list(PROPRIO), "image_keys": ["robot0_eye_in_hand_image"],
                                            "shape_meta": shape_meta},
                        "multi_step": {"n_obs_steps": 1, "n_action_steps": 4, "max_episode_steps": 300,
                                       "reset_within_step": True}}}
    env = read(EnvConfig, raw, "env")
    wrapper = env.wrappers.suite_wrapper
    assert isinstance(wrapper, RobomimicImageConfig) and env.use_image_obs
    run = types.SimpleNamespace(robomimic_env_cfg_path="cfg/robomimic/env_meta/lift-img.json", seed=42, env=env)
    suite = wrapper.suite(run)
    assert suite == RobomimicImageSuite(str(env_meta_path("lift-img").resolve()), PROPRIO,
                                        ("robot0_eye_in_hand_image",), 42, "fast")
