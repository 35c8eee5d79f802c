"""The dppo command end to end: exit codes, one-line errors, files written."""

import json
import subprocess
import sys

import numpy as np
import pytest

from core_torch.diffusion.model import DiffusionModel
from core_torch.runtime.canonical import export_state
from dppo.cli import main
from shared.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.settings import read_config

HOPPER = "configs/hopper/pretrain_diffusion_mlp.yaml"
FINETUNE = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"


def _dppo(*args):
    return subprocess.run([sys.executable, "-m", "dppo.cli", *args], capture_output=True, text=True)


def test_parity_on_hopper_config_exits_zero_and_writes_table(tmp_path):
    out = tmp_path / "parity.json"
    res = _dppo("parity", "--config", HOPPER, "--json", str(out), "denoising_steps=5",
                "model.network.mlp_dims=[64,64,64]")  # a short chain and a small network to compile
    assert res.returncode == 0, res.stderr
    assert "network/forward  mlp_mean.layers.1" in res.stdout
    assert "parity OK" in res.stdout
    report = json.loads(out.read_text())
    assert report["ok"] and report["num_failures"] == 0 and report["num_checks"] > 80
    sections = {r["section"] for r in report["rows"]}
    assert {"network/forward", "network/grad_param", "loss/grad_param", "sampler", "lr/lr_scheduler",
            "train_step/forced/model", "float32 rounding"} <= sections
    assert 0 < report["worst_margin"] <= 1 and report["rule"]["K"] > 0
    twins = [r for r in report["rows"] if r["kind"] == "twins"]
    assert all(r["margin"] <= 1 and r["e_torch"] is not None and r["d32"] is not None for r in twins)


def test_parity_on_finetune_config_covers_the_critic(capsys):
    assert main(["parity", "--config", FINETUNE, "--batch", "3", "model.actor.mlp_dims=[32,32,32]",
                 "denoising_steps=5", "ft_denoising_steps=4"]) == 0
    out = capsys.readouterr().out
    assert "critic/grad_param  Q1.layers.1.l2.weight" in out
    assert "lr/actor_lr_scheduler" in out and "lr/critic_lr_scheduler" in out


def test_bad_config_value_is_one_line_and_exit_2():
    res = _dppo("parity", "--config", HOPPER, "model.network.activation_type=Swish")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "model.network.activation_type" in res.stderr and "Traceback" not in res.stderr


def _hopper_checkpoint(path, overrides=()):
    cfg = load_config(HOPPER, list(overrides))
    model = DiffusionModel(read_config(cfg).model)
    save_checkpoint(path, Checkpoint({"model": export_state(model)}, {"config": cfg, "step": 1, "framework": "torch"}))
    return export_state(model)


def test_convert_round_trips_through_every_format(tmp_path):
    params = _hopper_checkpoint(tmp_path / "a.npz")
    for src, fmt, dst in (("a.npz", "tf", "tf"), ("tf", "torch", "b.pt"), ("b.pt", "canonical", "c.npz")):
        assert main(["convert", "--checkpoint", str(tmp_path / src), "--to", fmt, "--out", str(tmp_path / dst)]) == 0
    back = load_checkpoint(tmp_path / "c.npz")
    assert back.meta["step"] == 1 and back.config["model"]["network"]["mlp_dims"] == [512, 512, 512]
    for name, value in params.items():
        np.testing.assert_array_equal(back.group("model")[name], value)


def test_convert_rejects_a_checkpoint_that_does_not_match_its_config(tmp_path, capsys):
    _hopper_checkpoint(tmp_path / "a.npz")
    ckpt = load_checkpoint(tmp_path / "a.npz")
    ckpt.groups["model"]["network.time_embedding.1.weight"] = np.zeros((5, 5), np.float32)
    save_checkpoint(tmp_path / "bad.npz", ckpt)
    assert main(["convert", "--checkpoint", str(tmp_path / "bad.npz"), "--to", "torch",
                 "--out", str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert "network.time_embedding.1.weight" in err and "[5, 5]" in err
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_unreadable_checkpoint_is_exit_2(tmp_path, content, capsys):
    bad = tmp_path / "x.pt"
    bad.write_bytes(content)
    assert main(["convert", "--checkpoint", str(bad), "--to", "tf", "--out", str(tmp_path / "o")]) == 2
    assert "cannot read torch checkpoint" in capsys.readouterr().err
