"""`dppo pretrain` of upstream's image configs (robomimic pre_diffusion_mlp_img, pre_gaussian_mlp_img: vendored,
unchanged but for lengths) on a small image dataset in upstream's layout (`images` uint8 beside `states`, 96x96):
both backends train on the same batches, frames and shifts (the same losses), checkpoints resume exactly, and the
network's augment is what shifts the frames."""

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.data.synthetic import write_synthetic_dataset

UPSTREAM = "tests/fixtures/upstream_cfg/cfg/robomimic/pretrain/lift"
SHORT = ["wandb=null", "train.batch_size=8", "train.save_model_freq=1", "train.epoch_start_ema=0",
         "train.update_ema_freq=1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """DPPO_DATA_DIR holding robomimic/lift-img/train.npz: 3 short episodes with random 96x96 frames."""
    root = tmp_path_factory.mktemp("data")
    write_synthetic_dataset(root / "robomimic" / "lift-img", 9, 7, num_episodes=3, episode_length=(10, 14),
                            image_shape=(3, 96, 96))
    return root


def _run(data_dir, monkeypatch, config, backend, logdir, *extra):
    monkeypatch.setenv("DPPO_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DPPO_LOG_DIR", str(logdir.parent / "logs"))
    assert main(["pretrain", "--config", f"{UPSTREAM}/{config}.yaml", "--backend", backend, "--quiet",
                 f"logdir={logdir}", *SHORT, *extra]) == 0
    return [json.loads(line)["loss"] for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def test_image_diffusion_pretraining_agrees_across_backends_resumes_exactly_and_augments(tmp_path, data_dir,
                                                                                         monkeypatch):
    epochs = ["train.n_epochs=2"]
    torch_losses = _run(data_dir, monkeypatch, "pre_diffusion_mlp_img", "torch", tmp_path / "torch", *epochs)
    tf_losses = _run(data_dir, monkeypatch, "pre_diffusion_mlp_img", "tf", tmp_path / "tf", *epochs)
    np.testing.assert_allclose(tf_losses, torch_losses, rtol=1e-4)
    ckpt = load_checkpoint(tmp_path / "torch" / "checkpoint" / "state_2.npz")
    assert {"model", "ema", "optimizer"} <= set(ckpt.groups)
    assert any(k.startswith("network.backbone.vit") for k in ckpt.group("model"))
    resumed = _run(data_dir, monkeypatch, "pre_diffusion_mlp_img", "torch", tmp_path / "resumed", *epochs,
                   f"resume={tmp_path / 'torch' / 'checkpoint' / 'state_1.npz'}")
    assert resumed == torch_losses[1:]  # bit for bit
    plain = _run(data_dir, monkeypatch, "pre_diffusion_mlp_img", "torch", tmp_path / "plain", "train.n_epochs=1",
                 "model.network.augment=false")
    assert plain[0] != torch_losses[0]  # augment shifted the frames the network saw


def test_image_gaussian_pretraining_agrees_across_backends(tmp_path, data_dir, monkeypatch):
    losses = {b: _run(data_dir, monkeypatch, "pre_gaussian_mlp_img", b, tmp_path / b, "train.n_epochs=2")
              for b in ("torch", "tf")}
    np.testing.assert_allclose(losses["tf"], losses["torch"], rtol=1e-4)
    assert losses["torch"][1] < losses["torch"][0]
