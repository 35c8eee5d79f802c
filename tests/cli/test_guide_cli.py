"""`dppo guide train|sample|eval` end to end on both backends: metrics, checkpoints and plot, exact resume,
checkpoints interchangeable between backends, and one clear message for each kind of bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dppo.cli import main

CONFIG = "configs/reward_guided/rosenbrock.yaml"
SMALL = ["model.hidden_dim=16", "model.time_dim=4", "model.denoising_steps=10", "data.size=128", "train.batch_size=32",
         "sample.validation_size=16", "train.learning_rate=1e-3"]


def _train(logdir, backend: str, *extra: str) -> int:
    return main(["guide", "train", "--config", CONFIG, "--backend", backend, "--quiet", f"logdir={logdir}", *SMALL,
                 *extra])


def _metrics(logdir) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("guide")
    for backend in ("torch", "tf"):
        assert _train(root / backend, backend, "train.epochs=3") == 0
    return root


def test_train_writes_metrics_checkpoints_and_plot_on_both_backends_with_the_same_numbers(trained):
    runs = {b: _metrics(trained / b) for b in ("torch", "tf")}
    for backend, records in runs.items():
        assert [r["epoch"] for r in records] == [1, 2, 3]
        keys = {"lambda", "val_reward", "val_reward_plain", "reward", "loss", "denoise_loss", "grad_norm"}
        assert keys <= set(records[0])
        assert [r["lambda"] for r in records] == [0.0, 0.0, 0.02]  # warm-up max(1, int(0.6)), ramp over 1 epoch
        assert (trained / backend / "checkpoint" / "state_3.npz").exists()
        assert (trained / backend / "reward_curve.png").stat().st_size > 0
        assert all(-1.0 <= r[k] <= 0.0 for r in records for k in ("val_reward", "val_reward_plain", "reward"))
    for key in ("loss", "reward", "val_reward", "val_reward_plain"):
        np.testing.assert_allclose([r[key] for r in runs["torch"]], [r[key] for r in runs["tf"]], rtol=1e-4, atol=1e-5)


def test_resumed_run_logs_what_an_uninterrupted_one_does(tmp_path, trained):
    assert _train(tmp_path, "torch", "train.epochs=2") == 0
    assert _train(tmp_path, "torch", "train.epochs=3") == 0
    assert _metrics(tmp_path) == [{**r, "seconds": m["seconds"]} for r, m in
                                  zip(_metrics(trained / "torch"), _metrics(tmp_path))]


def test_sample_and_eval_load_either_backends_checkpoint(trained, tmp_path, capsys):
    out = tmp_path / "sample.json"
    ckpt = str(trained / "torch" / "checkpoint" / "state_3.npz")
    assert main(["guide", "sample", "--config", CONFIG, "--backend", "tf", "--checkpoint", ckpt, "--json", str(out),
                 "--contexts", "0,0;1,-1", *SMALL]) == 0
    assert "sampled p" in capsys.readouterr().out
    tf_sample = json.loads(out.read_text())
    assert np.asarray(tf_sample["p"]).shape == (2, 2)
    assert main(["guide", "sample", "--config", CONFIG, "--backend", "torch", "--checkpoint", ckpt, "--json",
                 str(out), "--contexts", "0,0;1,-1", *SMALL]) == 0
    np.testing.assert_allclose(json.loads(out.read_text())["p"], tf_sample["p"], rtol=1e-4, atol=1e-5)
    assert main(["guide", "eval", "--config", CONFIG, "--backend", "torch", "--contexts-n", "32",
                 f"logdir={trained / 'torch'}", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "with MPPI" in printed and re.search(r"optimum -?0\.0000$", printed.strip())


@pytest.mark.parametrize(("extra", "message"), [
    (["sample.mppi_temperature=0"], "config key 'sample.mppi_temperature' must be > 0"),
    (["train.reward_weight=-0.1"], "config key 'train.reward_weight' must be >= 0"),
    (["sample.mppi_candidates=0"], "config key 'sample.mppi_candidates' must be > 0"),
    (["black_box_reward=true", "train.reward_gradient=true"], "needs a differentiable reward"),
    (["model.param_dim=3"], "takes 2-d contexts and parameters"),
    (["train.not_a_key=1"], "unknown config key 'train.not_a_key'"),
])
def test_bad_config_gets_one_line_and_exit_2(tmp_path, capsys, extra, message):
    assert _train(tmp_path, "torch", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_contexts_and_missing_checkpoint_get_one_line_and_exit_2(tmp_path, capsys):
    assert main(["guide", "sample", "--config", CONFIG, "--backend", "torch", f"logdir={tmp_path}", *SMALL]) == 2
    assert "no checkpoint in" in capsys.readouterr().err
    assert _train(tmp_path, "torch", "train.epochs=1") == 0
    for contexts, message in (("0,a", "write numbers as"), ("0,0,0", "every context needs 2 numbers"),
                              ("nan,0", "must be finite")):
        assert main(["guide", "sample", "--config", CONFIG, "--backend", "torch", "--contexts", contexts,
                     f"logdir={tmp_path}", *SMALL]) == 2
        assert message in capsys.readouterr().err


def test_a_diverging_run_stops_with_exit_3_and_keeps_its_last_checkpoint(tmp_path, capsys):
    assert _train(tmp_path, "torch", "train.epochs=1") == 0
    assert _train(tmp_path, "torch", "train.epochs=2", "train.learning_rate=1e30", "train.max_grad_norm=null") == 3
    err = capsys.readouterr().err
    assert "non-finite" in err and "state_1.npz" in err
    assert (tmp_path / "checkpoint" / "state_1.npz").exists() and not (tmp_path / "checkpoint" / "state_2.npz").exists()


def test_a_reward_returning_nan_stops_sampling_with_one_message_and_exit_3(trained, monkeypatch, capsys):
    import shared.guided.rosenbrock as bench

    original = bench.reward
    monkeypatch.setattr(bench, "reward", lambda x, p, xp, **kw: original(x, p, xp, **kw) * np.nan)
    assert main(["guide", "eval", "--config", CONFIG, "--backend", "tf", "--contexts-n", "8",
                 f"logdir={trained / 'torch'}", "black_box_reward=true", *SMALL]) == 3
    err = capsys.readouterr().err.strip()
    assert "the reward returned 8 non-finite value(s) of 8" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["parity", "pretrain", "finetune"])
def test_a_reward_guided_config_given_to_another_command_says_which_command_runs_it(command, capsys):
    argv = [command, "--config", CONFIG] + ([] if command == "parity" else ["--backend", "torch"])
    assert main(argv) == 2
    assert "run it with `dppo guide train|sample|eval`" in capsys.readouterr().err
