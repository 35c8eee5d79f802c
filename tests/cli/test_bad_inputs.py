"""The catalogue of bad inputs: every one is refused before any work starts with exit code 2 and one
message on stderr naming the problem (argparse's usage block plus its one error line counts as one
message), never a traceback, and what an earlier run left in the logdir or output place is intact.

Cases run `dppo.cli.main` in-process (what the `dppo` script calls); the two that need a real
process (the exit code seen by a shell, TF's C++ logging on fd 2) run one."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dppo.cli import build_parser, main
from shared.checkpoint import Checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.data.synthetic import write_synthetic_dataset
from shared.param_spec import diffusion_mlp_spec, torch_default_init
from shared.settings import read_config

PRE = "configs/hopper/pretrain_diffusion_mlp.yaml"
FT = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
GAUSS = "configs/hopper/ppo_gaussian_mlp.yaml"
GYM_FT = "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2"
VISION_DIFFUSION = "model.diffusion.mlp_diffusion.VisionDiffusionMLP"
GAUSS_PRE = "tests/fixtures/upstream_cfg/cfg/gym/pretrain/hopper-medium-v2/pre_gaussian_mlp.yaml"
PRE_SMALL = ["model.network.mlp_dims=[32,32,32]", "train.batch_size=64", "train.lr_scheduler.first_cycle_steps=10",
             "train.n_epochs=2", "train.epoch_start_ema=1", "train.update_ema_freq=1"]
FT_SMALL = ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=6",
            "ft_denoising_steps=3", "train.n_steps=6", "env.n_envs=2", "train.batch_size=6"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A dataset, a pre-training checkpoint, an earlier run's logdir, and a few odd paths."""
    root = tmp_path_factory.mktemp("bad_inputs")
    dataset = write_synthetic_dataset(root / "data", 11, 3, num_episodes=6)
    cfg = load_config(PRE, ["model.network.mlp_dims=[32,32,32]",
                            f"normalization_path={dataset.parent / 'normalization.npz'}"])
    params = torch_default_init(diffusion_mlp_spec(read_config(cfg).model.network, "network."), 0)
    ckpt = root / "pre.npz"
    save_checkpoint(ckpt, Checkpoint({"model": params, "ema": params}, {"config": cfg, "kind": "pretrain",
                                                                         "epoch": 2}))
    run = root / "run"  # what an earlier run left: bad input for a new run into it must not touch it
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state_2.npz").write_bytes(ckpt.read_bytes())
    (run / "metrics.jsonl").write_text('{"epoch": 1, "loss": 1.0}\n{"epoch": 2, "loss": 0.9}\n')
    (root / "a_file").write_text("not a directory\n")
    (root / "models" / "1").mkdir(parents=True)
    (root / "models" / "1" / "saved_model.pb").write_bytes(b"an earlier export")
    (root / "not_a_checkpoint").mkdir()
    (root / "not_a_checkpoint" / "notes.txt").write_text("mine\n")
    return {"root": root, "data": dataset, "ckpt": ckpt, "run": run, "file": root / "a_file"}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and stderr lines of `dppo argv`, as the console script would end."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err.splitlines()


def _assert_one_message(err: list[str], *expected: str) -> None:
    assert err, "nothing on stderr"
    assert not any("Traceback" in line for line in err), "\n".join(err)
    *usage, last = err
    if usage:  # argparse: "usage: dppo ..." (wrapped onto indented lines), then one "dppo X: error: ..." line
        assert usage[0].startswith("usage: dppo") and all(line.startswith(" ") for line in usage[1:]), err
    assert last.startswith("dppo ") and ": error: " in last, err
    for text in expected:
        assert text in last, f"{text!r} not in {last!r}"


def _pretrain(f, *overrides: str) -> list[str]:
    return ["pretrain", "--config", PRE, "--backend", "torch", "--quiet", f"train_dataset_path={f['data']}",
            f"logdir={f['run']}", *PRE_SMALL, *overrides]


def _finetune(f, config: str, *overrides: str) -> list[str]:
    small = FT_SMALL if config == FT else ["model.actor.mlp_dims=[16,16]", "model.critic.mlp_dims=[16,16,16]"]
    return ["finetune", "--config", config, "--backend", "torch", "--quiet", f"logdir={f['run']}", *small,
            *overrides]


def _gaussian_pretrain(f, *overrides: str) -> list[str]:
    return ["pretrain", "--config", GAUSS_PRE, "--backend", "torch", "--quiet", f"train_dataset_path={f['data']}",
            f"logdir={f['run']}", "wandb=null", "model.network.mlp_dims=[16,16]", "train.n_epochs=2", *overrides]


RESIDUAL = "must be an odd number of equal widths for a residual MLP"
CONFIG_CASES = {
    # pre-training config: cross-key constraints, ranges, finite floats, seeds
    "residual mlp_dims [32,32]": (_pretrain, ["model.network.mlp_dims=[32,32]"],
                                  "'model.network.mlp_dims' " + RESIDUAL),
    "residual mlp_dims [32,64,32]": (_pretrain, ["model.network.mlp_dims=[32,64,32]"],
                                     "'model.network.mlp_dims' " + RESIDUAL),
    "dropout 1.5": (_pretrain, ["model.network.dropout=1.5"], "'model.network.dropout' must be in [0, 1)"),
    "time_dim 0": (_pretrain, ["model.network.time_dim=0"], "'model.network.time_dim' must be an even number >= 4"),
    "time_dim 2": (_pretrain, ["model.network.time_dim=2"], "'model.network.time_dim' must be an even number >= 4"),
    "time_dim 5": (_pretrain, ["model.network.time_dim=5"], "'model.network.time_dim' must be an even number >= 4"),
    "seed -1": (_pretrain, ["seed=-1"], "config key 'seed' must be in [0, 2147483647]"),
    "warmup past cycle": (_pretrain, ["train.lr_scheduler.warmup_steps=20"],
                          "'train.lr_scheduler.warmup_steps' must be < first_cycle_steps=10"),
    "cycle_mult 0": (_pretrain, ["train.lr_scheduler.cycle_mult=0"], "'train.lr_scheduler.cycle_mult' must be > 0"),
    "cycle_mult shrinking below warm-up": (_pretrain, ["train.n_epochs=50", "train.lr_scheduler.warmup_steps=2",
                                                       "train.lr_scheduler.cycle_mult=0.1"],
                                           "'train.lr_scheduler.cycle_mult' is too small for this run"),
    "learning_rate nan": (_pretrain, ["train.learning_rate=.nan"], "'train.learning_rate' must be a finite number"),
    "weight_decay inf": (_pretrain, ["train.weight_decay=.inf"], "'train.weight_decay' must be a finite number"),
    "ema decay nan": (_pretrain, ["ema.decay=.nan"], "'ema.decay' must be a finite number"),
    "clip value -inf": (_pretrain, ["model.denoised_clip_value=-.inf"],
                        "'model.denoised_clip_value' must be a finite number"),
    "obs_dim a mapping": (_pretrain, ["obs_dim={a:1}"], "config key 'obs_dim' must be a number"),
    "cond_steps a list": (_pretrain, ["cond_steps=[1]"], "config key 'cond_steps' must be a number"),
    "override not YAML": (_pretrain, ["model.network.mlp_dims=[32,32"], "cannot parse override"),
    # fine-tuning (DPPO) config: the actor's and critic's analogous keys
    "actor residual mlp_dims": (lambda f, *o: _finetune(f, FT, *o), ["model.actor.mlp_dims=[32,32]"],
                                "'model.actor.mlp_dims' " + RESIDUAL),
    "critic residual mlp_dims": (lambda f, *o: _finetune(f, FT, *o), ["model.critic.mlp_dims=[32,64,32]"],
                                 "'model.critic.mlp_dims' " + RESIDUAL),
    "actor dropout": (lambda f, *o: _finetune(f, FT, *o), ["model.actor.dropout=1.5"],
                      "'model.actor.dropout' must be in [0, 1)"),
    "actor time_dim": (lambda f, *o: _finetune(f, FT, *o), ["model.actor.time_dim=2"],
                       "'model.actor.time_dim' must be an even number >= 4"),
    "finetune seed": (lambda f, *o: _finetune(f, FT, *o), ["seed=-1"], "config key 'seed' must be in"),
    "actor warmup past cycle": (lambda f, *o: _finetune(f, FT, *o), ["train.actor_lr_scheduler.warmup_steps=2000"],
                                "'train.actor_lr_scheduler.warmup_steps' must be < first_cycle_steps=1000"),
    "critic cycle_mult 0": (lambda f, *o: _finetune(f, FT, *o), ["train.critic_lr_scheduler.cycle_mult=0"],
                            "'train.critic_lr_scheduler.cycle_mult' must be > 0"),
    "actor_lr nan": (lambda f, *o: _finetune(f, FT, *o), ["train.actor_lr=.nan"],
                     "'train.actor_lr' must be a finite number"),
    "gamma inf": (lambda f, *o: _finetune(f, FT, *o), ["train.gamma=.inf"], "'train.gamma' must be a finite number"),
    "ft_denoising_steps past the chain": (lambda f, *o: _finetune(f, FT, *o), ["ft_denoising_steps=9"],
                                          "'model.ft_denoising_steps' must be in [1, 6]"),
    "finetune obs_dim a mapping": (lambda f, *o: _finetune(f, FT, *o), ["obs_dim={a:1}"],
                                   "config key 'obs_dim' must be a number"),
    # Gaussian PPO config
    "gaussian residual actor": (lambda f, *o: _finetune(f, GAUSS, *o), ["model.actor.residual_style=true",
                                                                      "model.actor.mlp_dims=[16,16,16]"],
                                "'model.actor.mlp_dims' must be an odd number of equal hidden widths, then the output"),
    "gaussian residual critic": (lambda f, *o: _finetune(f, GAUSS, *o), ["model.critic.mlp_dims=[16,16]"],
                                 "'model.critic.mlp_dims' " + RESIDUAL),
    "gaussian fixed_std -1": (lambda f, *o: _finetune(f, GAUSS, *o), ["model.actor.fixed_std=-1"],
                              "'model.actor.fixed_std' must be > 0"),
    "gaussian std_max inf": (lambda f, *o: _finetune(f, GAUSS, *o), ["model.actor.std_max=.inf"],
                             "'model.actor.std_max' must be a finite number"),
    "gaussian std_min above std_max": (lambda f, *o: _finetune(f, GAUSS, *o), ["model.actor.std_min=2"],
                                       "'model.actor.std_max' must be >= std_min=2.0"),
    # Gaussian pre-training config (upstream pre_gaussian_mlp.yaml)
    "gaussian pretrain ent_coef -1": (_gaussian_pretrain, ["train.ent_coef=-1"], "'train.ent_coef' must be >= 0"),
    "gaussian pretrain obs_dim vs cond_dim": (_gaussian_pretrain, ["model.network.cond_dim=12"],
                                              "model.network.cond_dim=12 must equal obs_dim * cond_steps = 11"),
    "gaussian pretrain residual fixed std, even hidden": (_gaussian_pretrain, ["model.network.residual_style=true",
                                                                            "model.network.mlp_dims=[16,16]"],
                                                       "'model.network.mlp_dims' must be an odd number"),
    "gaussian pretrain diffusion model": (_gaussian_pretrain,
                                          ["model._target_=model.diffusion.diffusion.DiffusionModel"],
                                          "name different policy kinds"),
    "gaussian pretrain horizon_steps": (_gaussian_pretrain, ["model.horizon_steps=2"],
                                        "disagrees with model.horizon_steps=2"),
    # a replay-buffer (off-policy) algorithm given an image network: camera frames are PPO's (upstream's image agents)
    "DIPO image actor": (lambda f, *o: _finetune(f, f"{GYM_FT}/ft_dipo_diffusion_mlp.yaml", *o),
                         [f"model.actor._target_={VISION_DIFFUSION}"],
                         f"model.actor is an image network ({VISION_DIFFUSION}): DIPO fine-tunes state policies "
                         "only; fine-tune on camera frames with PPO (DPPO or Gaussian PPO, upstream's image agents)"),
    "RLPD image actor": (lambda f, *o: _finetune(f, f"{GYM_FT}/rlpd_mlp.yaml", *o),
                         ["model.actor._target_=model.common.mlp_gaussian.Gaussian_VisionMLP"],
                         "model.actor is an image network (model.common.mlp_gaussian.Gaussian_VisionMLP): RLPD "
                         "(Gaussian policy) fine-tunes state policies only"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value_is_refused_before_any_work(files, capsys, case):
    argv, overrides, message = CONFIG_CASES[case]
    before = _snapshot(files["run"])
    code, err = _run(argv(files, *overrides), capsys)
    assert code == 2
    _assert_one_message(err, message)
    assert _snapshot(files["run"]) == before


@pytest.mark.parametrize("task", ["can", "square"])
def test_missing_can_and_square_image_demos_name_the_command_that_makes_them(tmp_path, monkeypatch, capsys, task):
    """Only Lift's image demonstrations are made on first use; Can's and Square's (scripted makers, no recorded
    dataset) are one line naming `dppo data robomimic --images` with the folder the config reads, and nothing is
    made: upstream's image pre-training config (train.npz), and the normalization file fine-tuning and evaluation
    read through the same check (dppo/envs/runtime.py)."""
    from shared.data.robomimic_image_demos import ensure_image_dataset
    from shared.errors import DatasetError

    monkeypatch.setenv("DPPO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    config = f"tests/fixtures/upstream_cfg/cfg/robomimic/pretrain/{task}/pre_diffusion_mlp_img.yaml"
    code, err = _run(["pretrain", "--config", config, "--backend", "torch"], capsys)
    folder = tmp_path / "data" / "robomimic" / f"{task}-img"
    make = f"make them there with dppo data robomimic --task {task} --images --out {folder}"
    assert code == 2
    _assert_one_message(err, f"{folder / 'train.npz'} not found: the {task} image demonstrations are not made on "
                        f"first use (only lift's are); {make}")
    with pytest.raises(DatasetError, match=f"normalization.npz not found: .*; {re.escape(make)}$"):
        ensure_image_dataset(folder / "normalization.npz")
    assert not folder.exists()


def _yaml(root: Path, name: str, text: str) -> str:
    path = root / name
    path.write_text(text)
    return str(path)


def test_config_files_with_yaml_errors_and_infinite_floats_name_file_line_and_key(files, capsys, tmp_path):
    broken = _yaml(tmp_path, "broken.yaml", "seed: 1\nmodel: [1, 2\nema: 3\n")
    code, err = _run(["pretrain", "--config", broken, "--backend", "tf"], capsys)
    assert code == 2
    _assert_one_message(err, f"cannot parse config {broken}: line 3, column 4: did not find expected ',' or ']'",
                        "line 2, column 8")
    indented = _yaml(tmp_path, "indented.yaml", "seed: 1\n  ema: 3\n")
    code, err = _run(["parity", "--config", indented], capsys)
    assert code == 2
    _assert_one_message(err, f"cannot parse config {indented}: line 2, column 6: mapping values are not allowed")
    with open(PRE) as f:
        infinite = _yaml(tmp_path, "inf.yaml", f.read().replace("learning_rate: 1e-3", "learning_rate: .inf"))
    code, err = _run(["pretrain", "--config", infinite, "--backend", "torch", f"logdir={files['run']}"], capsys)
    assert code == 2
    _assert_one_message(err, "config key 'train.learning_rate' must be a finite number, got inf")


def test_every_config_reading_command_refuses_a_bad_config(files, capsys, tmp_path):
    """parity, eval, data collect, convert --from-upstream and main read their configs through the
    same typed settings; main reads both of its configs before pre-training starts."""
    bad_time = "model.network.time_dim=0"
    for argv, key in [
        (["parity", "--config", PRE, bad_time], "model.network.time_dim"),
        (["eval", "--config", FT, "--backend", "tf", f"base_policy_path={files['ckpt']}", "seed=-1"], "seed"),
        (["data", "collect", "--config", GAUSS, "--teacher", str(files["ckpt"]), "--out", str(tmp_path / "d"),
          "model.actor.fixed_std=0"], "model.actor.fixed_std"),
        (["convert", "--from-upstream", str(files["ckpt"]), "--config", PRE, "--out", str(tmp_path / "u.npz"),
          bad_time], "model.network.time_dim"),
    ]:
        code, err = _run(argv, capsys)
        assert code == 2, argv
        _assert_one_message(err, f"config key '{key}'")
    job = _yaml(tmp_path, "job.yaml", f"pretrain_config: {PRE}\nfinetune_config: {FT}\n"
                                      f"data_dir: {files['data'].parent}\npretrain_overrides: [train.n_epochs=1]\n"
                                      "finetune_overrides: ['model.actor.mlp_dims=[8,8]']\n")
    code, err = _run(["main", "--config", job, "--workdir", str(tmp_path / "main")], capsys)
    assert code == 2
    _assert_one_message(err, "config key 'model.actor.mlp_dims' " + RESIDUAL)
    assert not (tmp_path / "main").exists()  # refused before pre-training
    job = _yaml(tmp_path, "job2.yaml", f"pretrain_config: {PRE}\nfinetune_config: {FT}\ndata_dir: data\n"
                                       "pretrain_overrides: []\nfinetune_overrides: []\neval_episodes: .nan\n")
    code, err = _run(["main", "--config", job, "--workdir", str(tmp_path / "main")], capsys)
    assert code == 2
    _assert_one_message(err, "'eval_episodes'", "must be a positive integer, got nan")


ARGUMENT_CASES = {
    "eval --episodes 0": (["eval", "--config", FT, "--backend", "torch", "--episodes", "0"], "--episodes"),
    "eval --episodes -3": (["eval", "--config", FT, "--backend", "torch", "--episodes", "-3"], "--episodes"),
    "eval --seed -1": (["eval", "--config", FT, "--backend", "torch", "--seed", "-1"], "--seed"),
    "data collect --transitions 0": (["data", "collect", "--config", GAUSS, "--teacher", "t.npz", "--out", "o",
                                      "--transitions", "0"], "--transitions"),
    "parity --batch 0": (["parity", "--config", PRE, "--batch", "0"], "--batch"),
    "parity --seed x": (["parity", "--config", PRE, "--seed", "x"], "--seed"),
    "bench --repeats 0": (["bench", "--repeats", "0"], "--repeats"),
    "export --act-steps 0": (["export", "--checkpoint", "c.npz", "--out", "m", "--act-steps", "0"], "--act-steps"),
    "export --version -1": (["export", "--checkpoint", "c.npz", "--out", "m", "--version", "-1"], "--version"),
}


@pytest.mark.parametrize("case", sorted(ARGUMENT_CASES))
def test_bad_numeric_argument_gets_argparse_usage_and_one_error(capsys, case):
    argv, option = ARGUMENT_CASES[case]
    code, err = _run(argv, capsys)
    assert code == 2
    _assert_one_message(err, f"argument {option}: must be")


def _out_cases(f) -> dict[str, tuple[list[str], str]]:
    root, ckpt, file = f["root"], str(f["ckpt"]), str(f["file"])
    ft_eval = ["eval", "--config", FT, "--backend", "torch", f"base_policy_path={ckpt}"]
    return {
        "export --out a file": (["export", "--checkpoint", ckpt, "--out", file], f"--out {file} is a file"),
        "export --out under a file": (["export", "--checkpoint", ckpt, "--out", f"{file}/m"],
                                      f"{file} is a file, not a directory"),
        "convert --out a directory": (["convert", "--checkpoint", ckpt, "--to", "torch", "--out", str(root / "models")],
                                      "is a directory; expected a file name"),
        "convert --out under a file": (["convert", "--checkpoint", ckpt, "--out", f"{file}/c.npz"],
                                       f"{file} is a file, not a directory"),
        "convert --to tf --out a file": (["convert", "--checkpoint", ckpt, "--to", "tf", "--out", file],
                                         "is a file; --to tf writes a checkpoint directory"),
        "convert --to tf --out someone's directory": (
            ["convert", "--checkpoint", ckpt, "--to", "tf", "--out", str(root / "not_a_checkpoint")],
            "is a directory but not a dppo TF checkpoint; refusing to replace it"),
        "eval --json a directory": ([*ft_eval, "--json", str(root / "models")], "is a directory; expected a file"),
        "eval --json under a file": ([*ft_eval, "--json", f"{file}/r.json"], f"{file} is a file, not a directory"),
        "parity --json under a file": (["parity", "--config", PRE, "--json", f"{file}/p.json"], "is a file, not a"),
        "bench --json under a file": (["bench", "--json", f"{file}/b.json"], "is a file, not a directory"),
        "main --workdir a file": (["main", "--workdir", file], f"--workdir {file} is a file"),
        "data convert --out a file": (["data", "convert", "--d4rl", "x.hdf5", "--out", file],
                                      f"--out {file} is a file"),
        "data collect --out a file": (["data", "collect", "--config", GAUSS, "--teacher", ckpt, "--out", file],
                                      f"--out {file} is a file"),
    }


@pytest.mark.parametrize("case", sorted(_out_cases({"root": Path("r"), "ckpt": "c", "file": "f"})))
def test_unusable_output_path_is_refused_up_front_and_nothing_is_lost(files, capsys, case):
    argv, message = _out_cases(files)[case]
    before = _snapshot(files["root"])
    code, err = _run(argv, capsys)
    assert code == 2
    _assert_one_message(err, message)
    assert _snapshot(files["root"]) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (a place nobody can write)")
def test_output_path_nobody_can_write_is_refused_up_front(files, capsys):
    for argv in (["export", "--checkpoint", str(files["ckpt"]), "--out", "/proc/dppo-models"],
                 ["eval", "--config", FT, "--backend", "torch", f"base_policy_path={files['ckpt']}", "--json",
                  "/proc/dppo/result.json"]):
        code, err = _run(argv, capsys)
        assert code == 2
        _assert_one_message(err, "cannot write in /proc")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only-mode directories")
def test_output_under_a_read_only_directory_is_refused_up_front(files, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, err = _run(["convert", "--checkpoint", str(files["ckpt"]), "--out", str(locked / "c.npz")], capsys)
    finally:
        locked.chmod(0o755)
    assert code == 2
    _assert_one_message(err, f"cannot write in {locked} (permission denied)")


class _RunsCode:
    """A pickle payload: unpickling it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _torch_files(root: Path) -> dict[str, tuple[Path, str]]:
    import torch

    t = torch.zeros(2)
    cases = {
        "meta not a mapping": ({"meta": 5, "model": {"w": t}}, "'meta' must be a mapping, got int"),
        "group not a mapping": ({"meta": {}, "model": 5}, "'model' must map tensor names to tensors, got int"),
        "entry not a tensor": ({"meta": {}, "model": {"w": 5}}, "'model' entry 'w' is not a tensor (int)"),
        "bfloat16 tensor": ({"meta": {}, "model": {"w": t.bfloat16()}}, "'model' entry 'w' (torch.bfloat16) cannot"),
        "config not a mapping": ({"meta": {"config": [1]}, "model": {"w": t}}, "its metadata's config must be a"),
        "code payload": ({"meta": {}, "model": _RunsCode(root / "ran")}, "holds a Python object"),
    }
    out = {}
    for name, (payload, message) in cases.items():
        path = root / f"{name.replace(' ', '_')}.pt"
        torch.save(payload, path)
        out[name] = (path, message)
    (root / "random.pt").write_bytes(np.random.default_rng(0).bytes(300))
    out["random bytes"] = (root / "random.pt", "not a file written by torch.save")
    (root / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    out["garbage npz"] = (root / "garbage.npz", "cannot read checkpoint")
    np.savez(root / "meta_list.npz", __meta__=np.array("[1, 2]"))
    out["npz metadata a list"] = (root / "meta_list.npz", "its metadata must be a mapping, got list")
    return out


CHECKPOINT_CASES = ["meta not a mapping", "group not a mapping", "entry not a tensor", "bfloat16 tensor",
                    "config not a mapping", "code payload", "random bytes", "garbage npz", "npz metadata a list"]


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_malformed_checkpoint_file_is_one_line_naming_it_and_never_runs_code(files, capsys, tmp_path, case):
    path, message = _torch_files(tmp_path)[case]
    for argv in (["convert", "--checkpoint", str(path), "--out", str(tmp_path / "out.npz")],
                 ["export", "--checkpoint", str(path), "--out", str(tmp_path / "models")]):
        code, err = _run(argv, capsys)
        assert code == 2, argv
        _assert_one_message(err, str(path), message)
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "models").exists()


def test_malformed_base_policy_is_refused_before_fine_tuning(files, capsys, tmp_path):
    path, message = _torch_files(tmp_path)["entry not a tensor"]
    before = _snapshot(files["run"])
    code, err = _run(_finetune(files, FT, f"base_policy_path={path}"), capsys)
    assert code == 2
    _assert_one_message(err, str(path), message)
    assert _snapshot(files["run"]) == before


def test_eval_without_a_policy_is_refused(capsys):
    code, err = _run(["eval", "--config", FT, "--backend", "torch"], capsys)
    assert code == 2
    _assert_one_message(err, "evaluation needs base_policy_path=CKPT")


def test_agents_built_without_base_policy_print_no_warning(capsys):
    """bench and parity build fresh agents on purpose: no "no base_policy_path" warning there."""
    from tests.small_dppo import small_agent

    small_agent("torch", [])
    assert capsys.readouterr().err == ""


def _parsers(parser: argparse.ArgumentParser, name: str = "dppo"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {a.dest for a in action._choices_actions if a.help}
            assert described == set(action.choices), f"{name}: subcommands without a description"
            for sub, p in action.choices.items():
                yield from _parsers(p, f"{name} {sub}")


def test_every_option_of_every_subcommand_is_described(capsys):
    commands = dict(_parsers(build_parser()))
    assert len(commands) == 22  # dppo, 12 subcommands, data's 4, guide's 3, ddpo's 2
    for name, parser in commands.items():
        undescribed = [a.option_strings or a.dest for a in parser._actions
                       if not a.help and not isinstance(a, argparse._SubParsersAction)]
        assert not undescribed, f"{name}: {undescribed}"
        code, _ = _run([*name.split()[1:], "--help"], capsys)
        assert code == 0


def test_a_real_process_exits_2_with_one_line(tmp_path):
    broken = _yaml(tmp_path, "broken.yaml", "a: [1\n")
    res = subprocess.run([sys.executable, "-m", "dppo.cli", "parity", "--config", broken], capture_output=True,
                         text=True)
    assert res.returncode == 2
    _assert_one_message(res.stderr.splitlines(), f"cannot parse config {broken}")


def test_tensorflow_logging_stays_off_stderr_of_an_exit_3_torch_run(files, tmp_path):
    """The torch backend imports TF (TensorBoard's writer does); its C++ start-up lines must not
    join the one-line message of a run that stopped on a non-finite loss."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DPPO_TF_VERBOSE")}
    res = subprocess.run([sys.executable, "-m", "dppo.cli", "pretrain", "--config", PRE, "--backend", "torch",
                          "--quiet", f"train_dataset_path={files['data']}", f"logdir={tmp_path / 'run'}", *PRE_SMALL,
                          "train.learning_rate=1e38", "train.lr_scheduler.min_lr=1e38"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 3
    _assert_one_message(res.stderr.splitlines(), "non-finite loss")
