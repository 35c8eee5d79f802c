"""`dppo finetune` and `dppo eval` end to end: both backends, exact resume, divergence, worker crash."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dppo.cli import main

DPPO = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
GAUSSIAN = "configs/hopper/ppo_gaussian_mlp.yaml"
TINY = ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=6",
        "ft_denoising_steps=3", "train.n_steps=6", "env.n_envs=2", "train.batch_size=6", "train.update_epochs=2",
        "env.max_episode_steps=60", "normalization_path=data/hopper-medium-v2/normalization.npz"]


def _records(logdir):
    with open(os.path.join(logdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_finetune_and_eval_run_on_both_backends(tmp_path, capsys, backend):
    logdir = tmp_path / backend
    assert main(["finetune", "--config", DPPO, "--backend", backend, "--quiet", f"logdir={logdir}", *TINY,
                 "train.n_train_itr=3", "train.val_freq=2", "train.save_model_freq=2"]) == 0
    recs = _records(logdir)
    assert [r["itr"] for r in recs] == [0, 1, 2] and [r["eval"] for r in recs] == [True, False, True]
    for key in ("env_steps", "avg_episode_reward", "actor_lr", "critic_lr", "seconds"):
        assert key in recs[1]
    for key in ("pg_loss", "v_loss", "approx_kl", "clipfrac", "explained_variance"):
        assert key in recs[1]
    # upstream's schedule: itr % save_model_freq == 0, and the last iteration
    assert sorted(os.listdir(logdir / "checkpoint")) == ["state_0.npz", "state_2.npz"]
    out = tmp_path / "eval.json"
    assert main(["eval", "--config", DPPO, "--backend", backend, "--episodes", "2", "--json", str(out), *TINY,
                 f"base_policy_path={logdir / 'checkpoint' / 'state_2.npz'}"]) == 0
    result = json.loads(out.read_text())
    assert result["episodes"] == 2 and np.isfinite(result["return_mean"]) and "d4rl_score_mean" in result


def test_sigkill_then_resume_logs_the_same_iterations(tmp_path):
    args = [*TINY, "train.n_train_itr=40", "train.val_freq=5", "train.save_model_freq=4"]
    assert main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={tmp_path / 'full'}",
                 *args]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dppo.cli", "finetune", "--config", DPPO, "--backend", "torch", "--quiet",
           f"logdir={killed}", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoint" / "state_12.npz").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={killed}", *args]) == 0
    full, resumed = _records(tmp_path / "full"), _records(killed)
    assert [r["itr"] for r in resumed] == list(range(40))
    for a, b in zip(full, resumed):
        for key in ("avg_episode_reward", "pg_loss", "v_loss", "approx_kl", "actor_lr", "critic_lr", "env_steps"):
            assert a.get(key) == b.get(key), (a["itr"], key)


def test_non_finite_loss_stops_with_message_and_keeps_checkpoint(tmp_path, capsys):
    logdir = tmp_path / "run"
    args = [*TINY, "train.val_freq=100", "train.save_model_freq=1"]
    assert main(["finetune", "--config", GAUSSIAN, "--backend", "torch", "--quiet", f"logdir={logdir}",
                 "model.actor.mlp_dims=[16,16]", *args[1:], "train.n_train_itr=2"]) == 0
    ckpt = logdir / "checkpoint" / "state_1.npz"
    before = ckpt.read_bytes()
    code = main(["finetune", "--config", GAUSSIAN, "--backend", "torch", "--quiet", f"logdir={logdir}",
                 "model.actor.mlp_dims=[16,16]", *args[1:], "train.n_train_itr=6", "train.actor_lr=1e38",
                 "train.actor_lr_scheduler.min_lr=1e38", "train.critic_lr=1e38",
                 "train.critic_lr_scheduler.min_lr=1e38"])
    err = capsys.readouterr().err
    assert code == 3 and "non-finite" in err
    assert ckpt.read_bytes() == before


def test_environment_worker_crash_is_one_message_and_keeps_checkpoints(tmp_path, capsys):
    logdir = tmp_path / "crash"
    code = main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={logdir}", *TINY,
                 "env_name=tests.cli.crashing_env:CrashingHopper-v0", "env.asynchronous=true", "train.n_train_itr=20",
                 "train.save_model_freq=1", "train.val_freq=100", "normalization_path=null"])
    err = capsys.readouterr().err
    assert code == 4, err
    errors = [line for line in err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "environment step failed" in errors[0] and "rerun the same command to resume" in errors[0]
    assert (logdir / "checkpoint").is_dir() and os.listdir(logdir / "checkpoint")


def test_a_worker_dead_at_an_iterations_reset_is_one_message_and_keeps_checkpoints(tmp_path, capsys):
    logdir = tmp_path / "crash"
    code = main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={logdir}", *TINY,
                 "env_name=tests.cli.crashing_env:CrashingResetHopper-v0", "env.asynchronous=true",
                 "env.reset_at_iteration=true",
                 "train.n_train_itr=3", "train.save_model_freq=1", "train.val_freq=100", "normalization_path=null"])
    err = capsys.readouterr().err
    assert code == 4, err
    errors = [line for line in err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "environment reset failed at the start of iteration 1" in errors[0], errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert (logdir / "checkpoint").is_dir() and os.listdir(logdir / "checkpoint")


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_eval_and_finetune_start_from_the_shipped_checkpoint(tmp_path, capsys, backend):
    shipped = ["base_policy_path=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz",
               "normalization_path=data/hopper-medium-v2/normalization.npz", "env.max_episode_steps=80"]
    assert main(["eval", "--config", DPPO, "--backend", backend, "--episodes", "2", *shipped]) == 0
    assert "D4RL score" in capsys.readouterr().out
    assert main(["finetune", "--config", DPPO, "--backend", backend, "--quiet", f"logdir={tmp_path}", *shipped,
                 "train.n_train_itr=2", "train.n_steps=4", "env.n_envs=2", "train.batch_size=8",
                 "train.update_epochs=1", "train.val_freq=100"]) == 0


def test_a_finetuned_checkpoint_restores_base_actor_and_actor_ft_separately(tmp_path):
    """Evaluating or continuing from a fine-tuned checkpoint keeps the frozen base for the early steps."""
    from dppo.algorithms.agents import make_agent
    from shared.checkpoint import load_checkpoint
    from shared.settings import load_settings

    shipped = "base_policy_path=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz"
    assert main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={tmp_path}", shipped,
                 "normalization_path=data/hopper-medium-v2/normalization.npz", "train.n_train_itr=2",
                 "train.n_steps=4", "env.n_envs=2", "train.batch_size=8", "train.val_freq=100",
                 "env.max_episode_steps=40"]) == 0
    tuned = tmp_path / "checkpoint" / "state_1.npz"
    saved = load_checkpoint(tuned).group("model")
    cfg = load_settings(DPPO, [f"base_policy_path={tuned}"])
    for backend in ("torch", "tf"):
        state = make_agent(cfg, backend).state_groups()["model"]
        name = "mlp_mean.layers.0.weight"
        np.testing.assert_array_equal(state[f"actor.{name}"], saved[f"actor.{name}"])
        np.testing.assert_array_equal(state[f"actor_ft.{name}"], saved[f"actor_ft.{name}"])
        assert not np.array_equal(saved[f"actor.{name}"], saved[f"actor_ft.{name}"])  # fine-tuning moved actor_ft
