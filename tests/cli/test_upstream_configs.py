"""Upstream irom-lab/dppo's own gym config files (tests/fixtures/upstream_cfg, values unchanged) load
and run with `dppo` as they are: only key=value overrides that shorten the run."""

from __future__ import annotations

import glob
import json
import os
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.config.loading import locate_data_file
from shared.settings import (
    ALGORITHMS,
    EvalConfig,
    FinetuneConfig,
    GaussianPretrainConfig,
    PretrainConfig,
    load_settings,
)

UPSTREAM = Path("tests/fixtures/upstream_cfg/cfg/gym")
ALL = sorted(glob.glob(str(UPSTREAM / "**" / "*.yaml"), recursive=True))
UNBUILDABLE = str(UPSTREAM / "finetune/walker2d-v2/ft_rlpd_mlp.yaml")
SHIPPED_PRETRAINED = "data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz"
SHIPPED_BY_ENV = {"walker2d": "data/checkpoints/walker2d_pretrain_diffusion_mlp_e60.npz",
                  "halfcheetah": "data/checkpoints/halfcheetah_pretrain_diffusion_mlp_e60.npz"}
# where upstream's hopper fine-tune and eval configs look for their pre-trained policy, under DPPO_LOG_DIR
UPSTREAM_BASE = "gym-pretrain/hopper-medium-v2_pre_diffusion_mlp_ta4_td20/2024-06-12_23-10-05/checkpoint/state_3000.pt"
SHORT_FT = ["train.n_train_itr=2", "train.n_steps=3", "env.n_envs=2", "train.batch_size=6", "train.val_freq=2",
            "env.max_episode_steps=24"]


def _save_as_upstream_state(shipped: str, target: Path) -> None:
    """A shipped pre-trained checkpoint written as upstream's state_<n>.pt (torch state dicts)."""
    target.parent.mkdir(parents=True)
    ema = load_checkpoint(shipped).group("ema")
    state = OrderedDict((k, torch.from_numpy(np.asarray(v))) for k, v in ema.items())
    torch.save({"epoch": 3000, "model": state, "ema": state}, target)


@pytest.fixture
def upstream_env(tmp_path, monkeypatch):
    """DPPO_LOG_DIR in tmp with the shipped pre-trained policy saved as upstream's state_3000.pt."""
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("DPPO_DATA_DIR", raising=False)  # default: data/, found in upstream's gym/<env>/ layout too
    _save_as_upstream_state(SHIPPED_PRETRAINED, tmp_path / "logs" / UPSTREAM_BASE)
    return tmp_path


def test_every_vendored_upstream_config_is_the_pinned_commit_and_reads_unchanged():
    source = json.loads((UPSTREAM.parent.parent / "SOURCE.json").read_text())
    robomimic = sorted(glob.glob(str(UPSTREAM.parent / "robomimic" / "**" / "*.yaml"), recursive=True))
    assert sorted(str(UPSTREAM.parent.parent / f) for f in source["files"]) == sorted(ALL + robomimic)
    assert len(robomimic) == 108 and len([p for p in robomimic if "_img" in p]) == 18  # every robomimic config
    by_stem = {stem: a for a in ALGORITHMS.values() for stem in a.upstream_configs}
    kinds = {}
    for path in ALL:
        if path == UNBUILDABLE:
            continue
        cfg = load_settings(path)
        kinds[Path(path).name] = type(cfg)
        assert "${" not in cfg.logdir and "now" not in cfg.logdir
        if Path(path).stem in by_stem:  # a file the algorithm table names (fine-tuning, or Cal-QL's offline phase)
            algorithm = by_stem[Path(path).stem]
            assert isinstance(cfg, algorithm.config) and cfg.algorithm == algorithm.name, path
        else:
            assert "/finetune/" not in path, f"{path}: a fine-tuning file no algorithm names"
    assert {Path(p).stem for p in ALL} >= set(by_stem)  # every named file is vendored
    assert len(ALL) == 50  # every one of upstream's gym configs
    assert kinds["pre_diffusion_mlp.yaml"] is PretrainConfig and kinds["eval_gaussian_mlp.yaml"] is EvalConfig
    assert kinds["ft_ppo_diffusion_mlp.yaml"] is FinetuneConfig
    gaussian = load_settings(str(UPSTREAM / "finetune/walker2d-v2/ppo_gaussian_mlp.yaml"))
    assert not gaussian.is_diffusion and gaussian.gaussian_actor.fixed_std is None
    assert kinds["pre_gaussian_mlp.yaml"] is GaussianPretrainConfig
    for env, fixed_std, mlp_dims in (("hopper", 0.1, (256,) * 3), ("walker2d", None, (256,) * 2),
                                     ("halfcheetah", 0.1, (256,) * 3)):
        pre = load_settings(str(UPSTREAM / f"pretrain/{env}-medium-v2/pre_gaussian_mlp.yaml"))
        net = pre.model.network
        assert isinstance(pre, GaussianPretrainConfig) and pre.train.ent_coef == 0.0  # upstream's default
        assert (net.fixed_std, net.mlp_dims, net.tanh_output) == (fixed_std, mlp_dims, True), env


def test_the_one_config_upstreams_own_classes_cannot_build_is_refused_with_one_message(capsys):
    """walker2d's ft_rlpd_mlp.yaml asks for a residual actor of three 512-wide layers; upstream's ResidualMLP
    asserts an even number of residual layers and fails to build it (as it fails to read the file's older train
    keys). It is refused here in one line; with an actor upstream can build it runs."""
    assert main(["parity", "--config", UNBUILDABLE]) == 2
    err = capsys.readouterr().err
    assert "model.actor.mlp_dims" in err and "residual" in err and err.count("\n") == 1
    cfg = load_settings(UNBUILDABLE, ["model.actor.mlp_dims=[512,512,512,512]"])
    assert cfg.algorithm == "rlpd" and cfg.settings.critic_num_update == 64  # the older layout's replay_ratio


def test_upstream_plumbing_is_ignored_but_an_unknown_key_is_named(capsys):
    path = str(UPSTREAM / "finetune/hopper-v2/ft_ppo_diffusion_mlp.yaml")
    assert main(["parity", "--config", path, "train.not_a_key=1"]) == 2
    assert "unknown config key 'train.not_a_key'" in capsys.readouterr().err


def test_upstream_env_variables_have_defaults_or_one_message(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("DPPO_LOG_DIR", raising=False)
    cfg = load_settings(str(UPSTREAM / "pretrain/hopper-medium-v2/pre_diffusion_mlp.yaml"))
    assert cfg.logdir.startswith("runs/gym-pretrain/") and cfg.train_dataset_path.startswith("data/gym/")
    custom = tmp_path / "c.yaml"
    custom.write_text("x: ${oc.env:SOME_UNSET_VARIABLE_42}\n")
    monkeypatch.delenv("SOME_UNSET_VARIABLE_42", raising=False)
    assert main(["pretrain", "--config", str(custom), "--backend", "torch"]) == 2
    assert "environment variable SOME_UNSET_VARIABLE_42 is not set" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_upstream_pretrain_config_runs_on_our_data_layout(upstream_env, backend):
    path = str(UPSTREAM / "pretrain/hopper-medium-v2/pre_diffusion_mlp.yaml")
    assert main(["pretrain", "--config", path, "--backend", backend, "--quiet", "train.n_epochs=1",
                 "train.max_n_episodes=4", "wandb=null"]) == 0
    assert list((upstream_env / "logs" / "gym-pretrain").rglob("state_1.npz"))


GAUSSIAN_PRE = str(UPSTREAM / "pretrain/hopper-medium-v2/pre_gaussian_mlp.yaml")
GAUSSIAN_EVAL = str(UPSTREAM / "eval/hopper-v2/eval_gaussian_mlp.yaml")
SHORT_PRE = ["train.max_n_episodes=4", "wandb=null"]


def _records(logdir: Path) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_upstream_gaussian_pretrain_config_runs_resumes_exactly_and_its_checkpoint_evaluates(upstream_env, backend):
    assert main(["pretrain", "--config", GAUSSIAN_PRE, "--backend", backend, "--quiet", "train.n_epochs=2",
                 "train.save_model_freq=1", *SHORT_PRE]) == 0
    last = next((upstream_env / "logs" / "gym-pretrain").rglob("state_2.npz"))
    full = last.parent.parent
    assert (full / "checkpoint" / "state_1.npz").exists()
    records = _records(full)
    assert [r["epoch"] for r in records] == [1, 2] and {"loss", "entropy", "lr"} <= set(records[0])
    assert records[1]["loss"] < records[0]["loss"]
    ckpt = load_checkpoint(last)
    assert ckpt.meta["kind"] == "pretrain" and ckpt.meta["config"]["model"]["_target_"].endswith("GaussianModel")
    assert set(ckpt.group("ema")) == set(ckpt.group("model")) == {
        f"network.mlp_mean.moduleList.{i}.linear_1.{p}" for i in range(4) for p in ("weight", "bias")}
    # killed after epoch 2's metrics, before its save: the rerun resumes from state_1 and repeats epoch 2 exactly
    resumed = upstream_env / "resumed"
    shutil.copytree(full, resumed)
    (resumed / "checkpoint" / "state_2.npz").unlink()
    assert main(["pretrain", "--config", GAUSSIAN_PRE, "--backend", backend, "--quiet", "train.n_epochs=2",
                 "train.save_model_freq=1", f"logdir={resumed}", *SHORT_PRE]) == 0
    assert [(r["loss"], r["entropy"]) for r in _records(resumed)] == [(r["loss"], r["entropy"]) for r in records]
    again = load_checkpoint(resumed / "checkpoint" / "state_2.npz")
    for group in ("model", "ema", "optimizer"):
        for name, value in ckpt.group(group).items():
            np.testing.assert_array_equal(again.group(group)[name], value, err_msg=f"{group}/{name}")
    assert main(["eval", "--config", GAUSSIAN_EVAL, "--backend", backend, "--episodes", "2",
                 f"base_policy_path={last}", "env.max_episode_steps=20"]) == 0


def test_upstream_gaussian_eval_config_evaluates_an_upstream_gaussian_pretraining_state_pt(upstream_env, tmp_path,
                                                                                         capsys):
    """Upstream's GaussianModel state_<n>.pt (network.*, with Gaussian_MLP's logvar_min/max constants)."""
    ours = tmp_path / "ours"
    assert main(["pretrain", "--config", GAUSSIAN_PRE, "--backend", "torch", "--quiet", "train.n_epochs=1",
                 f"logdir={ours}", *SHORT_PRE]) == 0
    weights = load_checkpoint(ours / "checkpoint" / "state_1.npz").group("model")
    state = OrderedDict((k, torch.from_numpy(np.asarray(v))) for k, v in weights.items())
    state["network.logvar_min"], state["network.logvar_max"] = torch.tensor(-9.2), torch.tensor(0.0)
    torch.save({"epoch": 1, "model": state, "ema": state}, tmp_path / "state_1.pt")
    assert main(["eval", "--config", GAUSSIAN_EVAL, "--backend", "tf", "--episodes", "2",
                 f"base_policy_path={tmp_path / 'state_1.pt'}", "env.max_episode_steps=20"]) == 0
    assert "return" in capsys.readouterr().out



def test_parity_refuses_gaussian_pretraining_and_export_serves_it(upstream_env, tmp_path, capsys):
    assert main(["parity", "--config", GAUSSIAN_PRE]) == 2
    assert "does not run Gaussian pre-training configs" in capsys.readouterr().err
    assert main(["pretrain", "--config", GAUSSIAN_PRE, "--backend", "torch", "--quiet", "train.n_epochs=1",
                 f"logdir={tmp_path / 'run'}", *SHORT_PRE]) == 0
    capsys.readouterr()
    export = ["export", "--checkpoint", str(tmp_path / "run" / "checkpoint" / "state_1.npz"), "--out",
              str(tmp_path / "exported"), "--no-xla"]
    assert main(export) == 2  # upstream's pre-training config names no normalization file
    err = capsys.readouterr().err
    assert "pass --normalization" in err and err.count("\n") == 1
    assert main([*export, "--normalization", "data/hopper-medium-v2/normalization.npz"]) == 0
    assert "signatures: serving_default, sample" in capsys.readouterr().out


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_upstream_dppo_finetune_config_runs_from_an_upstream_state_pt(upstream_env, backend, capsys):
    """ft_ppo_diffusion_mlp.yaml's base_policy_path is upstream's state_3000.pt: it imports itself."""
    path = str(UPSTREAM / "finetune/hopper-v2/ft_ppo_diffusion_mlp.yaml")
    assert main(["finetune", "--config", path, "--backend", backend, "--quiet", *SHORT_FT]) == 0
    assert "wandb" in capsys.readouterr().err  # upstream's wandb section without the package: one note, no failure
    assert list((upstream_env / "logs" / "gym-finetune").rglob("state_1.npz"))


def test_upstream_gaussian_config_runs_and_its_checkpoint_evaluates(upstream_env):
    path = str(UPSTREAM / "finetune/hopper-v2/ppo_gaussian_mlp.yaml")
    assert main(["finetune", "--config", path, "--backend", "tf", "--quiet", *SHORT_FT, "wandb=null"]) == 0
    ckpt = next((upstream_env / "logs" / "gym-finetune").rglob("state_1.npz"))
    assert main(["eval", "--config", path, "--backend", "torch", "--episodes", "2", f"base_policy_path={ckpt}",
                 "env.max_episode_steps=20"]) == 0


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_upstream_eval_config_evaluates_an_upstream_state_pt(upstream_env, backend, capsys):
    path = str(UPSTREAM / "eval/hopper-v2/eval_diffusion_mlp.yaml")
    assert main(["eval", "--config", path, "--backend", backend, "--episodes", "2", "env.max_episode_steps=20"]) == 0
    assert "return" in capsys.readouterr().out


def test_walker2d_config_finds_data_in_upstreams_gym_layout(upstream_env, monkeypatch):
    """The shipped normalization copied into upstream's own layout under another DPPO_DATA_DIR."""
    data = upstream_env / "data"
    norm = data / "gym" / "walker2d-medium-v2" / "normalization.npz"
    norm.parent.mkdir(parents=True)
    shutil.copy("data/walker2d-medium-v2/normalization.npz", norm)
    monkeypatch.setenv("DPPO_DATA_DIR", str(data))
    assert locate_data_file(load_settings(str(UPSTREAM / "finetune/walker2d-v2/ppo_diffusion_mlp.yaml"))
                            .normalization_path) == norm
    path = str(UPSTREAM / "finetune/walker2d-v2/ppo_diffusion_mlp.yaml")
    assert main(["finetune", "--config", path, "--backend", "torch", "--quiet", *SHORT_FT, "wandb=null",
                 "model.actor.mlp_dims=[32,32,32]", "denoising_steps=4", "ft_denoising_steps=4"]) == 0


@pytest.mark.parametrize("env, backend", [("walker2d", "torch"), ("halfcheetah", "torch")])
def test_upstream_walker2d_and_halfcheetah_configs_run_on_the_shipped_data_and_checkpoint(env, backend, tmp_path,
                                                                                        monkeypatch):
    """From a fresh clone: pre_diffusion_mlp.yaml finds data/<env>-medium-v2/ (upstream writes data/gym/<env>/),
    and ft_ppo_diffusion_mlp.yaml fine-tunes the shipped checkpoint once it sits where upstream's names it."""
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("DPPO_DATA_DIR", raising=False)
    pre = load_settings(str(UPSTREAM / f"pretrain/{env}-medium-v2/pre_diffusion_mlp.yaml"))
    assert locate_data_file(pre.train_dataset_path) == Path(f"data/{env}-medium-v2/train.npz")
    path = str(UPSTREAM / f"finetune/{env}-v2/ft_ppo_diffusion_mlp.yaml")
    ft = load_settings(path)
    assert locate_data_file(ft.normalization_path) == Path(f"data/{env}-medium-v2/normalization.npz")
    _save_as_upstream_state(SHIPPED_BY_ENV[env], Path(ft.base_policy_path))
    assert main(["finetune", "--config", path, "--backend", backend, "--quiet", *SHORT_FT, "wandb=null",
                 "ft_denoising_steps=2"]) == 0
    assert list((tmp_path / "logs" / "gym-finetune").rglob("state_1.npz"))


def test_parity_runs_on_upstream_gaussian_and_dppo_configs():
    for name in ("finetune/halfcheetah-v2/ppo_gaussian_mlp.yaml", "finetune/hopper-v2/ppo_diffusion_mlp.yaml"):
        short_chain = ["denoising_steps=5", "ft_denoising_steps=4"] if "diffusion" in name else []
        assert main(["parity", "--config", str(UPSTREAM / name), "--batch", "4", "model.actor.mlp_dims=[32,32,32]",
                     "model.critic.mlp_dims=[16,16,16]", "train.actor_lr_scheduler.first_cycle_steps=50",
                     "train.critic_lr_scheduler.first_cycle_steps=50", *short_chain]) == 0, name


def test_a_dppo_checkpoint_reader_points_at_the_importer(tmp_path, upstream_env, capsys):
    state = upstream_env / "logs" / UPSTREAM_BASE
    assert main(["export", "--checkpoint", str(state), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "dppo convert --from-upstream" in err and err.count("\n") == 1


def test_convert_from_upstream_takes_overrides(tmp_path, upstream_env):
    state = upstream_env / "logs" / UPSTREAM_BASE
    path = str(UPSTREAM / "pretrain/hopper-medium-v2/pre_diffusion_mlp.yaml")
    assert main(["convert", "--from-upstream", str(state), "--config", path, "--out", str(tmp_path / "c.npz"),
                 "train.n_epochs=7"]) == 0
    assert load_checkpoint(tmp_path / "c.npz").meta["config"]["train"]["n_epochs"] == 7
    assert os.path.exists(tmp_path / "c.npz")
