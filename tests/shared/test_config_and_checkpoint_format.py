import os

import numpy as np
import pytest

from shared.checkpoint import Checkpoint, check_strict, load_checkpoint, save_checkpoint
from shared.config.loading import eval_arithmetic, load_config
from shared.errors import CheckpointError, ConfigError
from shared.settings import read_config

HOPPER = "configs/hopper/pretrain_diffusion_mlp.yaml"


def test_hopper_config_resolves_upstream_keys():
    cfg = load_config(HOPPER)
    dc = read_config(cfg).model
    assert dc.network.cond_dim == 11 and dc.network.mlp_dims == (512, 512, 512)
    assert dc.network.residual_style and dc.network.activation_type == "ReLU"
    assert (dc.denoising_steps, dc.horizon_steps, dc.action_dim) == (20, 4, 3)


def test_overrides_apply_and_eval_is_arithmetic_only():
    cfg = load_config(HOPPER, ["cond_steps=2", "obs_dim=5"])
    assert cfg["model"]["network"]["cond_dim"] == 10
    assert eval_arithmetic("2 * (3 + 4) ** 2") == 98
    with pytest.raises(ConfigError, match="arithmetic only"):
        eval_arithmetic("__import__('os').getcwd()")


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  network:\n    action_dim: 3\n")
    with pytest.raises(ConfigError, match="cannot tell the config's kind"):
        read_config(load_config(bad))
    bad.write_text("_target_: agent.pretrain.train_diffusion_agent.TrainDiffusionAgent\nmodel:\n  network:\n"
                   "    action_dim: 3\n")
    with pytest.raises(ConfigError, match="'model.network.horizon_steps'"):
        read_config(load_config(bad))
    with pytest.raises(ConfigError, match="'model.network.mlp_dims' must be"):
        read_config(load_config(HOPPER, ["model.network.mlp_dims=7"]))
    with pytest.raises(ConfigError, match="activation"):
        read_config(load_config(HOPPER, ["model.network.activation_type=Swish"]))
    with pytest.raises(ConfigError, match="cond_dim"):
        read_config(load_config(HOPPER, ["model.network.cond_dim=12"]))


def test_canonical_checkpoint_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "c.npz"
    ckpt = Checkpoint({"model": {"a.weight": np.ones((2, 3), np.float32)}}, {"step": 3, "config": {"x": 1}})
    save_checkpoint(path, ckpt)
    back = load_checkpoint(path)
    np.testing.assert_array_equal(back.group("model")["a.weight"], np.ones((2, 3)))
    assert back.meta["step"] == 3 and back.config == {"x": 1}
    assert os.listdir(tmp_path) == ["c.npz"]  # no temp file left behind

    class WriteFailedError(Exception):
        pass

    class Bad:
        def __array__(self, *a, **k):
            raise WriteFailedError

    with pytest.raises(WriteFailedError):
        save_checkpoint(path, Checkpoint({"model": {"a.weight": Bad()}}, {}))
    assert os.listdir(tmp_path) == ["c.npz"]
    np.testing.assert_array_equal(load_checkpoint(path).group("model")["a.weight"], np.ones((2, 3)))


def test_corrupt_or_foreign_checkpoints_get_one_message(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a dppo canonical checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="no 'ema' tensors"):
        Checkpoint({"model": {}}, {}).group("ema")


def test_strict_check_names_missing_extra_and_misshaped_tensors():
    spec = {"a.weight": (2, 3), "a.bias": (2,)}
    with pytest.raises(CheckpointError, match="missing tensor 'a.bias'"):
        check_strict(spec, {"a.weight": np.zeros((2, 3))})
    with pytest.raises(CheckpointError, match="unexpected tensor 'b.weight'"):
        check_strict(spec, {"a.weight": np.zeros((2, 3)), "a.bias": np.zeros(2), "b.weight": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"'a.weight' has shape \[3, 2\], expected \[2, 3\]"):
        check_strict(spec, {"a.weight": np.zeros((3, 2)), "a.bias": np.zeros(2)})


ROBOMIMIC_PRE = "tests/fixtures/upstream_cfg/cfg/robomimic/pretrain/lift"


@pytest.mark.parametrize("name", ["pre_diffusion_mlp", "pre_gaussian_mlp", "pre_gmm_mlp"])
def test_upstream_train_dataset_max_n_episodes_sets_the_demo_count(name, monkeypatch):
    """Upstream picks the demo count with train_dataset.max_n_episodes (StitchedSequenceDataset's argument):
    it must reach the dataset, not be skipped as plumbing; ours (train.max_n_episodes) may repeat it."""
    from shared.settings import load_settings
    from shared.settings.pretrain import episodes_used

    monkeypatch.setenv("DPPO_DATA_DIR", "data")
    path = f"{ROBOMIMIC_PRE}/{name}.yaml"
    assert episodes_used(load_settings(path).train_dataset, None) is None  # all episodes
    cfg = load_settings(path, ["train_dataset.max_n_episodes=20"])
    assert episodes_used(cfg.train_dataset, cfg.train.max_n_episodes) == 20
    cfg = load_settings(path, ["train_dataset.max_n_episodes=20", "train.max_n_episodes=20"])
    assert episodes_used(cfg.train_dataset, cfg.train.max_n_episodes) == 20
    with pytest.raises(ConfigError, match="'train.max_n_episodes'=10 and 'train_dataset.max_n_episodes'=20"):
        load_settings(path, ["train_dataset.max_n_episodes=20", "train.max_n_episodes=10"])
    with pytest.raises(ConfigError, match="'train_dataset.horizon_steps'=3 disagrees"):
        load_settings(path, ["train_dataset.horizon_steps=3"])
