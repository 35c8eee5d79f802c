"""`dppo eval` of upstream's image eval configs (robomimic eval/can/eval_{diffusion,gaussian}_mlp_img, vendored,
unchanged but for lengths and the policy's path) on policies pre-trained one epoch by upstream's image pre-training
configs: the camera envs render in worker processes (TF and Mesa's EGL cannot share one), the policy reads the wrist
camera's uint8 frames beside the state, and the line gives the success rate and the envs' frames/s; `--frames` draws
the frames the policy was given (the scene, upright and RGB), a state policy's `--frames` is one line."""

import numpy as np
import pytest
from PIL import Image

import dppo.training.evaluate as evaluation
from dppo.cli import main
from shared.data.synthetic import write_synthetic_dataset
from tests.shared.camera_cases_images import cube_red

PRE = "tests/fixtures/upstream_cfg/cfg/robomimic/pretrain/lift"
EVAL = "tests/fixtures/upstream_cfg/cfg/robomimic/eval/can"
SHORT = ["env.n_envs=2", "env.max_episode_steps=8", "n_steps=2"]


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """DPPO_DATA_DIR with a small image dataset (lift-img) and the normalization the Can eval configs read
    (can-img: the same sizes, 9 states and 7 actions); a diffusion and a Gaussian image policy pre-trained on it."""
    root = tmp_path_factory.mktemp("image_eval")
    data = root / "data"
    write_synthetic_dataset(data / "robomimic" / "lift-img", 9, 7, num_episodes=2, episode_length=(8, 10),
                            image_shape=(3, 96, 96))
    write_synthetic_dataset(data / "robomimic" / "can-img", 9, 7, num_episodes=2, episode_length=(8, 10))
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DPPO_DATA_DIR", str(data))
        mp.setenv("DPPO_LOG_DIR", str(root / "logs"))
        for kind in ("diffusion", "gaussian"):
            assert main(["pretrain", "--config", f"{PRE}/pre_{kind}_mlp_img.yaml", "--backend", "torch", "--quiet",
                         f"logdir={root / kind}", "wandb=null", "train.n_epochs=1", "train.batch_size=8"]) == 0
            out[kind] = root / kind / "checkpoint" / "state_1.npz"
    return {"data": data, "logs": root / "logs", **out}


@pytest.mark.parametrize("kind,backend", [("diffusion", "torch"), ("gaussian", "tf")])
def test_an_image_eval_config_evaluates_in_camera_envs(policies, monkeypatch, capsys, kind, backend):
    monkeypatch.setenv("DPPO_DATA_DIR", str(policies["data"]))
    monkeypatch.setenv("DPPO_LOG_DIR", str(policies["logs"]))
    assert main(["eval", "--config", f"{EVAL}/eval_{kind}_mlp_img.yaml", "--backend", backend, "--episodes", "2",
                 *SHORT, f"base_policy_path={policies[kind]}"]) == 0
    out = capsys.readouterr().out
    assert "over 2 episodes; success rate" in out and "frames/s in the envs" in out


def test_eval_draws_the_frames_the_policy_was_given(policies, monkeypatch, capsys, tmp_path):
    """The diffusion policy on TF, pointed at Lift (its wrist camera sees the red cube at reset): every tile of the
    grid is the newest frame of an observation the agent was given, and the first one of each episode is the
    scene (as tests/shared/camera_cases_images.py checks it on the env itself)."""
    monkeypatch.setenv("DPPO_DATA_DIR", str(policies["data"]))
    monkeypatch.setenv("DPPO_LOG_DIR", str(policies["logs"]))
    given = []  # (N, To, C, H, W) uint8 per policy step, as the agent received them
    build = evaluation.make_eval_agent

    def recording(cfg, backend):
        agent = build(cfg, backend)
        act = agent.act
        agent.act = lambda obs, *a, **k: given.append(np.array(obs["rgb"])) or act(obs, *a, **k)
        return agent

    monkeypatch.setattr(evaluation, "make_eval_agent", recording)
    png = tmp_path / "seen.png"
    assert main(["eval", "--config", f"{EVAL}/eval_diffusion_mlp_img.yaml", "--backend", "tf", "--episodes", "2",
                 "--frames", str(png), *SHORT, "env_name=lift", f"base_policy_path={policies['diffusion']}"]) == 0
    out = capsys.readouterr().out
    assert "over 2 episodes; success rate" in out and f"wrote {png}: 2 rows of 6 steps, 1 camera(s) of 96x96" in out
    grid = np.asarray(Image.open(png).convert("RGB"))
    tile = 2 * 96 + 2  # zoom 2, a 2-pixel border
    assert grid.shape == (2 * tile - 2, 6 * tile - 2, 3)
    assert len(given) == 2 and all(g.shape == (2, 1, 3, 96, 96) and g.dtype == np.uint8 for g in given)
    for row in range(2):
        for col, step in enumerate((0, 0, 0, 1, 1, 1)):  # 6 columns spread over the episode's 2 policy steps
            drawn = grid[row * tile: row * tile + 192: 2, col * tile: col * tile + 192: 2].transpose(2, 0, 1)
            np.testing.assert_array_equal(drawn, given[step][row, -1])
        first = grid[row * tile: row * tile + 192: 2, :192: 2].transpose(2, 0, 1)  # (3, 96, 96) at reset
        assert first.std() > 20  # not blank
        # the wrist camera looks down past the open fingers: the hand the dark band at the bottom, the cube red (in
        # BGR it would be blue) on the white table above it (upside down or transposed, the band would move)
        luma = first.astype(float).mean(axis=0)
        assert luma[-8:].mean() < 120 and luma[:48].mean() > 200
        assert cube_red(first)[:80].sum() >= 20


def test_a_state_policys_frames_option_is_one_line(tmp_path, capsys):
    cfg = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/ft_ppo_diffusion_mlp.yaml"
    code = main(["eval", "--config", cfg, "--backend", "torch", "--frames", str(tmp_path / "f.png"),
                 "base_policy_path=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--frames draws the camera frames an image policy is given" in err[0]
    assert not (tmp_path / "f.png").exists()
