"""`dppo pretrain` end to end on both backends, with resume, bad input and divergence."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.data.synthetic import write_synthetic_dataset

CONFIG = "configs/hopper/pretrain_diffusion_mlp.yaml"
SMALL = ["model.network.mlp_dims=[32,32,32]", "train.batch_size=64", "train.lr_scheduler.first_cycle_steps=10",
         "train.epoch_start_ema=2", "train.update_ema_freq=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return str(write_synthetic_dataset(tmp_path_factory.mktemp("data"), 11, 3, num_episodes=10))


def _args(dataset, logdir, *extra):
    return [f"train_dataset_path={dataset}", f"logdir={logdir}", *SMALL, *extra]


def _losses(logdir):
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        return [json.loads(line)["loss"] for line in f]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_pretrain_writes_metrics_checkpoints_and_tensorboard(tmp_path, dataset, backend):
    logdir = tmp_path / backend
    assert main(["pretrain", "--config", CONFIG, "--backend", backend, "--quiet",
                 *_args(dataset, logdir, "train.n_epochs=4", "train.save_model_freq=2")]) == 0
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert set(records[0]) == {"epoch", "loss", "lr", "seconds"}
    assert sorted(os.listdir(logdir / "checkpoint")) == ["state_2.npz", "state_4.npz"]
    ckpt = load_checkpoint(logdir / "checkpoint" / "state_4.npz")
    assert {"model", "ema", "optimizer"} <= set(ckpt.groups) and ckpt.meta["epoch"] == 4
    assert ckpt.meta["framework"] == backend
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logdir / "tensorboard"))


def test_same_config_gives_the_same_losses_in_both_frameworks_and_checkpoints_cross_load(tmp_path, dataset):
    for backend in ("torch", "tf"):
        assert main(["pretrain", "--config", CONFIG, "--backend", backend, "--quiet",
                     *_args(dataset, tmp_path / backend, "train.n_epochs=3", "train.save_model_freq=2")]) == 0
    np.testing.assert_allclose(_losses(tmp_path / "tf"), _losses(tmp_path / "torch"), rtol=1e-4)
    # a torch checkpoint resumes in TF (and continues like the torch run would)
    assert main(["pretrain", "--config", CONFIG, "--backend", "tf", "--quiet",
                 *_args(dataset, tmp_path / "cross", "train.n_epochs=3", "train.save_model_freq=2",
                        f"resume={tmp_path / 'torch' / 'checkpoint' / 'state_2.npz'}")]) == 0
    np.testing.assert_allclose(_losses(tmp_path / "cross"), _losses(tmp_path / "torch")[2:], rtol=1e-4)


def test_sigkill_then_resume_logs_the_same_losses_as_an_uninterrupted_run(tmp_path, dataset):
    common = ["train.n_epochs=300", "train.save_model_freq=5"]
    assert main(["pretrain", "--config", CONFIG, "--backend", "torch", "--quiet",
                 *_args(dataset, tmp_path / "full", *common)]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dppo.cli", "pretrain", "--config", CONFIG, "--backend", "torch", "--quiet",
           *_args(dataset, killed, *common)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900  # generous: a loaded 2-core machine can take minutes to get here
    while not (killed / "checkpoint" / "state_10.npz").exists() and time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed mid-run")
        time.sleep(0.01)
    assert (killed / "checkpoint" / "state_10.npz").exists(), "no checkpoint to resume from within the deadline"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # it really was killed mid-run
    assert len(_losses(killed)) < 300
    resume = ["pretrain", "--config", CONFIG, "--backend", "torch", "--quiet", *_args(dataset, killed, *common)]
    assert main(resume) == 0
    full, resumed = _losses(tmp_path / "full"), _losses(killed)
    assert len(resumed) == 300
    np.testing.assert_array_equal(resumed, full)


@pytest.mark.parametrize("override, message", [
    ("train.n_epocs=3", "unknown config key 'train.n_epocs'"),
    ("train.batch_size=lots", "config key 'train.batch_size' must be an integer"),
    ("ema=null", "config key 'ema' must not be null"),
    ("ema=3", "config key 'ema' must be a mapping"),
    ("model.network.activation_type=Swish", "model.network.activation_type"),
    ("model.network.mlp_dims=[32,64,32]", "'model.network.mlp_dims' must be an odd number of equal widths"),
    ("model.network.time_dim=2", "'model.network.time_dim' must be an even number >= 4"),
    ("train.learning_rate=.nan", "'train.learning_rate' must be a finite number"),
    ("train.lr_scheduler.warmup_steps=5000", "'train.lr_scheduler.warmup_steps' must be < first_cycle_steps"),
])
def test_bad_config_gets_one_message_and_exit_2(tmp_path, dataset, capsys, override, message):
    assert main(["pretrain", "--config", CONFIG, "--backend", "torch", "--quiet",
                 *_args(dataset, tmp_path, override)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_required_key_and_malformed_dataset_exit_2(tmp_path, dataset, capsys):
    cfg = tmp_path / "c.yaml"
    with open(CONFIG) as f:
        cfg.write_text(f.read().replace("  n_epochs: 3000\n", ""))
    assert main(["pretrain", "--config", str(cfg), "--backend", "tf", *_args(dataset, tmp_path)]) == 2
    assert "missing required config key 'train.n_epochs'" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, states=np.zeros((10, 7), np.float32), actions=np.zeros((10, 3), np.float32),
             traj_lengths=np.array([10]))
    assert main(["pretrain", "--config", CONFIG, "--backend", "torch", *_args(str(bad), tmp_path)]) == 2
    assert "obs_dim=11" in capsys.readouterr().err


def test_non_finite_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path, dataset, capsys):
    logdir = tmp_path / "diverge"
    assert main(["pretrain", "--config", CONFIG, "--backend", "torch", "--quiet",
                 *_args(dataset, logdir, "train.n_epochs=2", "train.save_model_freq=1")]) == 0
    good = logdir / "checkpoint" / "state_1.npz"
    before = good.read_bytes()
    os.remove(logdir / "checkpoint" / "state_2.npz")
    code = main(["pretrain", "--config", CONFIG, "--backend", "torch", "--quiet",
                 *_args(dataset, logdir, "train.n_epochs=5", "train.save_model_freq=1", "train.learning_rate=1e38",
                        "train.lr_scheduler.min_lr=1e38")])
    err = capsys.readouterr().err
    assert code == 3 and "non-finite loss" in err and "state_1.npz left untouched" in err
    assert good.read_bytes() == before
    assert sorted(os.listdir(logdir / "checkpoint")) == ["state_1.npz"]
