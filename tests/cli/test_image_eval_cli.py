"""`dppo eval` of upstream's image eval configs (robomimic eval/can/eval_{diffusion,gaussian}_mlp_img, vendored,
unchanged but for lengths and the policy's path) on policies pre-trained one epoch by upstream's image pre-training
configs: the camera envs render in worker processes (TF and Mesa's EGL cannot share one), the policy reads the wrist
camera's uint8 frames beside the state, and the line gives the success rate and the envs' frames/s."""

import pytest

from dppo.cli import main
from shared.data.synthetic import write_synthetic_dataset

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


@pytest.mark.parametrize("kind,backend", [("diffusion", "torch"), ("diffusion", "tf"), ("gaussian", "tf")])
def test_an_image_eval_config_evaluates_in_camera_envs(policies, monkeypatch, capsys, kind, backend):
    monkeypatch.setenv("DPPO_DATA_DIR", str(policies["data"]))
    monkeypatch.setenv("DPPO_LOG_DIR", str(policies["logs"]))
    assert main(["eval", "--config", f"{EVAL}/eval_{kind}_mlp_img.yaml", "--backend", backend, "--episodes", "2",
                 *SHORT, f"base_policy_path={policies[kind]}"]) == 0
    out = capsys.readouterr().out
    assert "over 2 episodes; success rate" in out and "frames/s in the envs" in out
