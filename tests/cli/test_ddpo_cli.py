"""`dppo ddpo pretrain|train` end to end on both backends (tiny runs): metrics, checkpoints, sample grids,
the same numbers on both backends from the same pre-trained weights, exact resume, and one clear message
for each kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main

PRETRAIN = "configs/ddpo/pretrain_digits.yaml"
SMALL = ["model.hidden_dim=16", "model.time_dim=4", "model.denoising_steps=20"]
TRAIN_SMALL = [*SMALL, "sample.ddim_steps=5", "sample.eval_samples=10", "train.eval_every=1",
               "train.checkpoint_every=1"]


def _config(name: str) -> str:
    return f"configs/ddpo/digits_{name}.yaml"


def _train(logdir, base, backend: str, name: str = "compress_is", *extra: str) -> int:
    return main(["ddpo", "train", "--config", _config(name), "--backend", backend, "--quiet", f"logdir={logdir}",
                 f"base={base}", *TRAIN_SMALL, *extra])


def _metrics(logdir) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddpo_pretrain")
    assert main(["ddpo", "pretrain", "--config", PRETRAIN, "--backend", "torch", "--quiet", f"logdir={root}",
                 *SMALL, "pretrain.epochs=2", "pretrain.checkpoint_every=1"]) == 0
    return root


def test_pretrain_writes_metrics_and_checkpoints_and_tf_resumes_it(base, tmp_path):
    records = _metrics(base)
    assert [r["epoch"] for r in records] == [1, 2]
    assert (base / "checkpoint" / "state_2.npz").exists()
    for f in base.iterdir():  # a copy the TF backend extends by one epoch
        if f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state_2.npz").write_bytes((base / "checkpoint" / "state_2.npz").read_bytes())
    assert main(["ddpo", "pretrain", "--config", PRETRAIN, "--backend", "tf", "--quiet", f"logdir={tmp_path}",
                 *SMALL, "pretrain.epochs=3", "pretrain.checkpoint_every=1"]) == 0
    assert [r["epoch"] for r in _metrics(tmp_path)] == [1, 2, 3]


@pytest.mark.parametrize("name", ["compress_sf", "incompress_is", "align_iskl", "compress_rwr", "align_sparse_rwr"])
def test_every_algorithm_trains_on_both_backends_with_the_same_numbers(base, tmp_path, name):
    for backend in ("torch", "tf"):
        assert _train(tmp_path / backend, base, backend, name, "train.iterations=2") == 0
    runs = {b: _metrics(tmp_path / b) for b in ("torch", "tf")}
    for backend, records in runs.items():
        assert [r["iteration"] for r in records] == [0, 1, 2]
        assert {"samples", "reward", "accuracy", "loss", "grad_norm", "eval_reward", "eval_accuracy"} <= set(records[1])
        for png in ("samples_before.png", "samples_after.png"):
            assert (tmp_path / backend / png).stat().st_size > 0
        assert (tmp_path / backend / "checkpoint" / "state_2.npz").exists()
    for key in ("eval_reward", "eval_accuracy"):
        np.testing.assert_allclose([r[key] for r in runs["torch"]], [r[key] for r in runs["tf"]], rtol=1e-3,
                                   atol=2e-3)
    if name != "align_iskl":  # JPEG sizes are integers of bytes: a rounding flip moves them; alignment is smooth
        return
    for key in ("reward", "loss"):
        np.testing.assert_allclose([r[key] for r in runs["torch"][1:]], [r[key] for r in runs["tf"][1:]],
                                   rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_resumed_run_logs_what_an_uninterrupted_one_does(base, tmp_path, backend):
    assert _train(tmp_path / "whole", base, backend, "align_is", "train.iterations=3") == 0
    assert _train(tmp_path / "split", base, backend, "align_is", "train.iterations=2") == 0
    assert _train(tmp_path / "split", base, backend, "align_is", "train.iterations=3") == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(_metrics(tmp_path / "split")) == strip(_metrics(tmp_path / "whole"))


@pytest.mark.parametrize(("extra", "message"), [
    (["algorithm=ppo"], "config key 'algorithm' must be one of"),
    (["reward=beauty"], "config key 'reward' must be one of"),
    (["train.learning_rate=0"], "config key 'train.learning_rate' must be > 0"),
    (["sample.ddim_steps=50"], "is larger than model.denoising_steps=20"),
    (["train.not_a_key=1"], "unknown config key 'train.not_a_key'"),
])
def test_bad_config_gets_one_line_and_exit_2(base, tmp_path, capsys, extra, message):
    assert _train(tmp_path, base, "torch", "compress_is", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_or_mismatched_base_gets_one_line_and_exit_2(base, tmp_path, capsys):
    assert _train(tmp_path / "a", tmp_path / "nowhere", "torch") == 2
    err = capsys.readouterr().err.strip()
    assert "no pre-trained model at base=" in err and len(err.splitlines()) == 1
    assert _train(tmp_path / "b", base, "torch", "compress_is", "model.hidden_dim=8") == 2
    err = capsys.readouterr().err.strip()
    assert "base model" in err and len(err.splitlines()) == 1


def test_a_ddpo_config_given_to_another_command_says_which_command_runs_it(capsys):
    assert main(["finetune", "--config", _config("compress_is"), "--backend", "torch"]) == 2
    assert "run it with `dppo ddpo pretrain|train`" in capsys.readouterr().err
