"""`dppo compare`: DPPO, RWR and Gaussian PPO on hopper (tiny overrides of the shipped and upstream
configs) with two seeds: a run directory per config x backend x seed made by the fine-tuning driver,
one PNG, a table row per config x backend with finite numbers, finished runs reused on a rerun, a
diverging run reported while the others finish, both backends in one plot, and bad input refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from dppo.cli import main
from dppo.workflows.compare import config_overrides
from dppo.workflows.compare_report import line_styles
from tests.cli.test_bad_inputs import _assert_one_message, _run

DPPO = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
GAUSS = "configs/hopper/ppo_gaussian_mlp.yaml"
UPSTREAM = "tests/fixtures/upstream_cfg/cfg/gym/finetune"
RWR = f"{UPSTREAM}/hopper-v2/ft_rwr_diffusion_mlp.yaml"
BUDGET = ["train.n_train_itr=3", "train.val_freq=2", "train.n_steps=5", "env.n_envs=2", "env.max_episode_steps=30",
          "train.batch_size=5", "train.update_epochs=1", "normalization_path=data/hopper-medium-v2/normalization.npz"]
SMALL = {  # per config (NAME:key=value): small networks, randomly initialised
    "finetune_ppo_diffusion_mlp": ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
                                   "denoising_steps=6", "ft_denoising_steps=3"],
    "ft_rwr_diffusion_mlp": ["model.network.mlp_dims=[16,16,16]", "denoising_steps=6", "base_policy_path=null",
                             "wandb=null"],
    "ppo_gaussian_mlp": ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]"],
}
NAMES = {"finetune_ppo_diffusion_mlp": "DPPO", "ft_rwr_diffusion_mlp": "RWR", "ppo_gaussian_mlp": "Gaussian PPO"}


def _small(*names: str) -> list[str]:
    return [f"{n}:{o}" for n in names for o in SMALL[n]]


def _compare(out: Path, *extra: str, configs=(DPPO, RWR, GAUSS), backend: str = "torch") -> list[str]:
    args = ["compare", "--backend", backend, "--out", str(out), "--quiet"]
    for c in configs:
        args += ["--config", c]
    return [*args, *BUDGET, *_small(*(Path(c).stem for c in configs)), *extra]


def _state(out: Path) -> dict[str, bytes]:
    """Every checkpoint and final evaluation under out."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.suffix == ".npz" or p.name == "final_eval.json"}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    assert main([*_compare(out), "--eval-episodes", "2", "--seeds", "0", "1"]) == 0
    return out


def test_compare_writes_one_png_and_a_row_per_config_and_backend_with_finite_numbers(compared):
    png = compared / "compare.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and matplotlib.image.imread(png).ndim == 3
    report = json.loads((compared / "results.json").read_text())
    assert report["env_name"] == "hopper-medium-v2" and report["eval_episodes"] == 2
    rows = {(r["config"], r["backend"]): r for r in report["rows"]}
    assert set(rows) == {(n, "torch") for n in NAMES}
    for (name, _), r in rows.items():
        assert r["algorithm"] == NAMES[name] and r["seeds"] == [0, 1] and not r["failed_seeds"]
        assert r["final_episodes"] == 4  # 2 episodes x 2 seeds
        for key in ("final_return_mean", "final_return_std_episodes", "final_return_std_seeds", "wall_time_s",
                    "d4rl_score_mean", "d4rl_score_std"):
            assert math.isfinite(r[key]), (name, key)
        returns = [x for run in r["runs"] for x in run["final_returns"]]
        assert r["final_return_mean"] == pytest.approx(np.mean(returns))
        assert r["final_return_std_episodes"] == pytest.approx(np.std(returns))
        assert r["env_steps"] == 40 if name != "ppo_gaussian_mlp" else 10  # one training iteration, act_steps 4 / 1
    dppo = rows["finetune_ppo_diffusion_mlp", "torch"]
    assert [p["env_steps"] for p in dppo["curve"]] == [0, 40] and all(p["seeds"] == 2 for p in dppo["curve"])
    assert dppo["best_return"] == max(p["mean"] for p in dppo["curve"])
    table = (compared / "results.md").read_text().splitlines()
    body = [line for line in table if line.startswith("| ") and not line.startswith(("| algorithm", "| ---"))]
    assert sorted(line.split(" | ")[0][2:] for line in body) == sorted(NAMES.values())
    assert all("nan" not in line for line in body)


def test_each_run_is_a_finetune_logdir_with_per_episode_eval_returns(compared, tmp_path):
    run = compared / "ft_rwr_diffusion_mlp" / "torch" / "seed1"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["eval"]]
    assert [r["itr"] for r in evals] == [0, 2]
    for r in evals:
        assert len(r["episode_returns"]) == r["num_episodes"] > 0
        assert np.mean(r["episode_returns"]) == pytest.approx(r["avg_episode_reward"])
    assert "episode_returns" not in records[1]  # training iterations keep their record as before
    # the same run by `dppo finetune`: the same records
    alone = tmp_path / "alone"
    assert main(["finetune", "--config", RWR, "--backend", "torch", "--quiet", *BUDGET, *SMALL["ft_rwr_diffusion_mlp"],
                 "seed=1", f"logdir={alone}"]) == 0
    by_finetune = [json.loads(line) for line in (alone / "metrics.jsonl").read_text().splitlines()]
    assert [{**r, "seconds": 0} for r in by_finetune] == [{**r, "seconds": 0} for r in records]


def test_rerun_reuses_finished_runs_and_their_final_evaluations(compared, capsys):
    capsys.readouterr()
    before = _state(compared)
    assert len(before) == 3 * 2 * 3  # 3 configs x 2 seeds: checkpoints 0 and 2, final_eval.json
    assert main([*_compare(compared), "--eval-episodes", "2", "--seeds", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("finished run reused") == 6 and "fine-tuning 3 iterations" not in out
    assert _state(compared) == before


def test_a_diverging_run_is_reported_while_the_others_finish(tmp_path, capsys):
    huge = [f"ppo_gaussian_mlp:{k}=1e38" for k in ("train.actor_lr", "train.actor_lr_scheduler.min_lr",
                                                     "train.critic_lr", "train.critic_lr_scheduler.min_lr")]
    code = main([*_compare(tmp_path, configs=(GAUSS, RWR)), *huge, "train.n_train_itr=6", "train.val_freq=5",
                 "--eval-episodes", "0"])
    captured = capsys.readouterr()
    assert code == 3 and "[ppo_gaussian_mlp/torch/seed0] failed: non-finite" in captured.err
    rows = {r["config"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert rows["ppo_gaussian_mlp"]["failed_seeds"] == [0] and rows["ppo_gaussian_mlp"]["final_return_mean"] is None
    rwr = rows["ft_rwr_diffusion_mlp"]
    assert rwr["seeds"] == [0] and math.isfinite(rwr["final_return_mean"])
    assert rwr["runs"][0]["final_from"] == "evaluation iteration 5"  # --eval-episodes 0: the last evaluation
    assert "failed: 0" in (tmp_path / "results.md").read_text()


def test_both_backends_share_a_colour_and_give_the_same_curve(tmp_path):
    """One evaluation iteration of Gaussian PPO (no TF update to compile: a cheap TF case)."""
    assert main([*_compare(tmp_path, "train.n_train_itr=1", "train.n_steps=40", configs=(GAUSS,), backend="both"),
                 "--eval-episodes", "0"]) == 0
    rows = {r["backend"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert set(rows) == {"torch", "tf"}
    styles = line_styles(list(rows.values()))
    (c_torch, s_torch), (c_tf, s_tf) = styles["ppo_gaussian_mlp", "torch"], styles["ppo_gaussian_mlp", "tf"]
    assert c_torch == c_tf and (s_torch, s_tf) == ("-", "--")
    # float32 twins, deterministic evaluation: the same episodes
    torch_run, tf_run = rows["torch"]["runs"][0], rows["tf"]["runs"][0]
    assert len(torch_run["final_returns"]) == len(tf_run["final_returns"]) > 0
    np.testing.assert_allclose(tf_run["final_returns"], torch_run["final_returns"], rtol=1e-4)
    assert (tmp_path / "ppo_gaussian_mlp" / "tf" / "seed0" / "checkpoint" / "state_0.npz").is_file()


def test_overrides_for_one_config_apply_in_order_with_the_common_ones():
    own = config_overrides(["a=1", "x:a=2", "y:b=3", "a=4"], ["x", "y"])
    assert own == {"x": ["a=1", "a=2", "a=4"], "y": ["a=1", "b=3", "a=4"]}
    assert config_overrides(["p=C:/d"], ["x"]) == {"x": ["p=C:/d"]}  # a colon in the value is the value's


def test_line_styles_give_each_config_its_own_colour():
    rows = [{"config": c, "backend": b} for c in ("a", "b", "c") for b in ("torch", "tf")]
    styles = line_styles(rows)
    assert len({styles[c, "torch"][0] for c in "abc"}) == 3
    assert all(styles[c, "tf"][1] == "--" and styles[c, "torch"][1] == "-" for c in "abc")


@pytest.mark.parametrize("case", ["missing", "pretrain", "two_tasks", "out_is_a_file", "unknown_name", "same_name",
                                  "bad_key"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    out = tmp_path / "out"
    args = {"missing": ["--config", DPPO, "--config", str(tmp_path / "nope.yaml")],
            "pretrain": ["--config", DPPO, "--config", "configs/hopper/pretrain_diffusion_mlp.yaml"],
            "two_tasks": ["--config", DPPO, "--config", f"{UPSTREAM}/walker2d-v2/ft_rwr_diffusion_mlp.yaml"],
            "out_is_a_file": ["--config", DPPO],
            "unknown_name": ["--config", DPPO, "nothere:train.n_steps=3"],
            "same_name": ["--config", GAUSS, "--config", f"{UPSTREAM}/hopper-v2/ppo_gaussian_mlp.yaml"],
            "bad_key": ["--config", DPPO, "--config", GAUSS, "train.not_a_key=1"]}[case]
    expected = {"missing": f"config file not found: {tmp_path / 'nope.yaml'}",
                "pretrain": "is a pretrain config; dppo compare takes fine-tuning configs",
                "two_tasks": "the configs are for different tasks: configs/hopper/finetune_ppo_diffusion_mlp.yaml "
                             "runs hopper-medium-v2",
                "out_is_a_file": "is a file; expected a directory",
                "unknown_name": "override 'nothere:train.n_steps=3' is for config 'nothere', which is not one",
                "same_name": "two configs are named 'ppo_gaussian_mlp'",
                "bad_key": f"{DPPO}: unknown config key 'train.not_a_key'"}[case]
    if case == "out_is_a_file":
        out.write_text("an earlier file\n")
    code, err = _run(["compare", "--backend", "torch", "--out", str(out), *args], capsys)
    assert code == 2
    _assert_one_message(err, expected)
    assert out.is_file() if case == "out_is_a_file" else not out.exists()
