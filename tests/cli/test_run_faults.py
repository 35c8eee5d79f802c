"""Run lifecycle faults of `dppo pretrain`, `dppo finetune` and `dppo main`: kills and reruns, a second
run into a busy logdir, write failures, SIGTERM, resuming from weights only, dropout seeding and
progress lines without a terminal. Each fault case checks the exit code, one message line naming
the problem, and that what earlier runs wrote is intact."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import shared.checkpoint
from dppo.cli import main
from dppo.runs.lock import LOCK_NAME
from dppo.runs.progress import Progress
from shared.checkpoint import load_checkpoint, save_checkpoint
from shared.data.synthetic import write_synthetic_dataset

PRETRAIN = "configs/hopper/pretrain_diffusion_mlp.yaml"
FINETUNE = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
SHIPPED = "data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz"
SMALL = ["model.network.mlp_dims=[32,32,32]", "train.batch_size=64", "train.lr_scheduler.first_cycle_steps=10",
         "train.epoch_start_ema=2", "train.update_ema_freq=1", "train.save_model_freq=1"]
TINY = ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=6",
        "ft_denoising_steps=3", "train.n_steps=6", "env.n_envs=2", "train.batch_size=6", "train.update_epochs=2",
        "env.max_episode_steps=60", "normalization_path=data/hopper-medium-v2/normalization.npz",
        "train.val_freq=100", "train.save_model_freq=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return str(write_synthetic_dataset(tmp_path_factory.mktemp("data"), 11, 3, num_episodes=10))


def pretrain(dataset, logdir, epochs, *extra, backend="torch", quiet=True):
    return main(["pretrain", "--config", PRETRAIN, "--backend", backend, *(["--quiet"] if quiet else []),
                 f"train_dataset_path={dataset}", f"logdir={logdir}", *SMALL, f"train.n_epochs={epochs}", *extra])


def finetune(logdir, iterations, *extra, backend="torch", quiet=True):
    return main(["finetune", "--config", FINETUNE, "--backend", backend, *(["--quiet"] if quiet else []),
                 f"logdir={logdir}", *TINY, f"train.n_train_itr={iterations}", *extra])


@pytest.fixture(scope="module")
def earlier(tmp_path_factory, dataset):
    """Finished earlier runs (torch): pre-training epochs 1-2 and fine-tuning iterations 0-1, checkpoint each."""
    root = tmp_path_factory.mktemp("earlier")
    assert pretrain(dataset, root / "pretrain", 2) == 0
    assert finetune(root / "finetune", 2) == 0
    return root


def copy_run(earlier, kind, dest):
    shutil.copytree(earlier / kind, dest)
    return dest


def snapshot(logdir):
    """Bytes of metrics.jsonl and every checkpoint: what must survive a failed run."""
    logdir = Path(logdir)
    files = [logdir / "metrics.jsonl", *sorted((logdir / "checkpoint").glob("state_*.npz"))]
    return {p.name: p.read_bytes() for p in files if p.exists()}


def records(logdir, key):
    return [json.loads(line)[key] for line in (Path(logdir) / "metrics.jsonl").read_text().splitlines()]


def temp_files(logdir):
    return [p for p in Path(logdir).rglob(".*.tmp*")]


def one_error(err, command, *needles):
    """stderr holds exactly one message line from `dppo <command>`, with every needle, and no traceback."""
    lines = [line for line in err.splitlines() if line.startswith(f"dppo {command}:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------- metrics never duplicated


def test_rerun_after_sigkill_before_the_first_checkpoint_starts_clean(tmp_path, dataset, capfd):
    """The issue's case: killed before any checkpoint (and mid-write), then the same logdir again."""
    logdir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dppo.cli", "pretrain", "--config", PRETRAIN, "--backend", "torch", "--quiet",
           f"train_dataset_path={dataset}", f"logdir={logdir}", *SMALL, "train.n_epochs=100000",
           "train.save_model_freq=100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # start-up (torch, TF) takes seconds on a quiet machine, minutes on a busy one
    while time.time() < deadline and (not (logdir / "metrics.jsonl").exists()
                                      or len((logdir / "metrics.jsonl").read_text().splitlines()) < 2):
        assert proc.poll() is None, "the run to be killed ended on its own"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert len(records(logdir, "epoch")) >= 2 and not (logdir / "checkpoint").exists()
    assert (logdir / LOCK_NAME).read_text().strip() == str(proc.pid)  # the killed run's lock is left behind
    (logdir / "checkpoint").mkdir()
    (logdir / "checkpoint" / ".state_1.npz.k1ll3d.tmp").write_bytes(b"PK\x03\x04 cut short")  # a kill mid-write
    capfd.readouterr()
    assert pretrain(dataset, logdir, 3) == 0
    err = capfd.readouterr().err
    assert records(logdir, "epoch") == [1, 2, 3]
    assert not temp_files(logdir) and not (logdir / LOCK_NAME).exists()
    assert f"took over the stale lock of pid {proc.pid}" in err and "removed 1 temp file" in err


def test_rerun_keeps_metrics_up_to_the_checkpoint_it_resumes_from(tmp_path, earlier, dataset):
    logdir = copy_run(earlier, "pretrain", tmp_path / "run")
    kept = (logdir / "metrics.jsonl").read_text()
    with open(logdir / "metrics.jsonl", "a") as f:  # what a run killed after epoch 4, before state_4, logged
        f.write('{"epoch": 3, "loss": 1.0}\n{"epoch": 4, "loss": 1.0}\n{"epoch": 5, "lo')
    assert pretrain(dataset, logdir, 3) == 0
    assert records(logdir, "epoch") == [1, 2, 3]
    assert (logdir / "metrics.jsonl").read_text().startswith(kept)


def test_finetune_rerun_without_a_checkpoint_starts_clean(tmp_path):
    logdir = tmp_path / "run"
    logdir.mkdir()
    (logdir / "metrics.jsonl").write_text('{"itr": 0, "avg_episode_reward": 1.0}\n{"itr": 1}\n')
    (logdir / "checkpoint").mkdir()
    (logdir / "checkpoint" / ".state_0.npz.abc.tmp").write_bytes(b"partial")
    assert finetune(logdir, 2, "train.save_model_freq=100") == 0
    assert records(logdir, "itr") == [0, 1]
    assert not temp_files(logdir)


# ---------------------------------------------------------------- the logdir lock


@pytest.fixture(scope="module")
def busy(tmp_path_factory, earlier):
    """Copies of the earlier runs, each locked by another live process."""
    root = tmp_path_factory.mktemp("busy")
    dirs = {"pretrain": copy_run(earlier, "pretrain", root / "pretrain"),
            "finetune": copy_run(earlier, "finetune", root / "finetune"), "main": root / "main"}
    code = ("import sys, time\nfrom dppo.runs.lock import LogdirLock\n"
            "locks = [LogdirLock(d) for d in sys.argv[1:]]\n[lock.acquire() for lock in locks]\n"
            "print('held', flush=True)\ntime.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, *map(str, dirs.values())], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    yield dirs, holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("command", ["pretrain", "finetune", "main"])
def test_a_second_run_into_a_busy_logdir_is_refused(busy, dataset, capsys, command):
    dirs, pid = busy
    before = snapshot(dirs[command])
    if command == "pretrain":
        code = pretrain(dataset, dirs[command], 4)
    elif command == "finetune":
        code = finetune(dirs[command], 4)
    else:
        code = main(["main", "--workdir", str(dirs[command]), "--quiet"])
    assert code == 2
    one_error(capsys.readouterr().err, command, "is in use by another run", f"pid {pid}", dirs[command])
    assert snapshot(dirs[command]) == before
    assert (dirs[command] / LOCK_NAME).read_text().strip() == str(pid)


def test_the_lock_is_released_at_exit_and_refuses_a_nested_run_in_one_process(tmp_path, earlier, dataset, capsys):
    from dppo.runs.lock import LogdirLock

    logdir = copy_run(earlier, "pretrain", tmp_path / "run")
    with LogdirLock(logdir):
        assert pretrain(dataset, logdir, 3) == 2
    one_error(capsys.readouterr().err, "pretrain", "in use by this process", f"pid {os.getpid()}")
    assert not (logdir / LOCK_NAME).exists()
    assert pretrain(dataset, logdir, 3) == 0 and not (logdir / LOCK_NAME).exists()


# ---------------------------------------------------------------- write failures


def _fail_checkpoint_writes(monkeypatch, code, after=0):
    """np.savez writes a few bytes of a checkpoint, then fails with `code`, from call `after` on."""
    real, calls = np.savez, []

    def savez(f, **arrays):
        calls.append(1)
        if len(calls) <= after:
            return real(f, **arrays)
        f.write(b"PK\x03\x04")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(shared.checkpoint.np, "savez", savez)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_checkpoint_write_failure_is_one_line_and_keeps_earlier_checkpoints(tmp_path, earlier, dataset, capsys,
                                                                              monkeypatch, code):
    logdir = copy_run(earlier, "pretrain", tmp_path / "run")
    before = snapshot(logdir)
    _fail_checkpoint_writes(monkeypatch, code, after=1)  # state_3 is written, state_4 fails
    assert pretrain(dataset, logdir, 5) == 2
    one_error(capsys.readouterr().err, "pretrain", f"cannot write {logdir / 'checkpoint' / 'state_4.npz'}",
              os.strerror(code), f"last checkpoint {logdir / 'checkpoint' / 'state_3.npz'} kept")
    after = snapshot(logdir)
    assert {k: after[k] for k in before if k != "metrics.jsonl"} == {k: v for k, v in before.items()
                                                                      if k != "metrics.jsonl"}
    assert after["metrics.jsonl"].startswith(before["metrics.jsonl"])
    assert not (logdir / "checkpoint" / "state_4.npz").exists() and not temp_files(logdir)
    assert load_checkpoint(logdir / "checkpoint" / "state_3.npz").meta["epoch"] == 3
    monkeypatch.undo()
    assert pretrain(dataset, logdir, 4) == 0 and records(logdir, "epoch") == [1, 2, 3, 4]


def test_a_metrics_write_failure_in_finetuning_is_one_line(tmp_path, earlier, capsys, monkeypatch):
    import dppo.runs.files

    logdir = copy_run(earlier, "finetune", tmp_path / "run")
    before = snapshot(logdir)

    def read_only(path, mode="r", *args, **kwargs):
        if "a" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(dppo.runs.files, "open", read_only, raising=False)
    assert finetune(logdir, 4) == 2
    one_error(capsys.readouterr().err, "finetune", f"cannot write {logdir / 'metrics.jsonl'}: Read-only file system",
              f"last checkpoint {logdir / 'checkpoint' / 'state_1.npz'} kept")
    assert snapshot(logdir) == before and not temp_files(logdir)


@pytest.mark.parametrize("command, backend", [("pretrain", "torch"), ("finetune", "torch"), ("pretrain", "tf")])
def test_an_unwritable_logdir_or_events_dir_is_one_line(tmp_path, earlier, dataset, capsys, command, backend):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    if command == "pretrain":
        # the logdir itself cannot be made (its parent is a file), or its TensorBoard directory is a file
        assert pretrain(dataset, blocker / "run", 3) == 2
        one_error(capsys.readouterr().err, "pretrain", f"cannot write {blocker / 'run'}", "Not a directory")
        logdir = copy_run(earlier, "pretrain", tmp_path / "run")
        shutil.rmtree(logdir / "tensorboard")
        (logdir / "tensorboard").write_text("in the way")
        before = snapshot(logdir)
        assert pretrain(dataset, logdir, 3, backend=backend) == 2
        one_error(capsys.readouterr().err, "pretrain", f"cannot write {logdir / 'tensorboard'}")
        assert snapshot(logdir) == before
    else:
        assert finetune(blocker / "run", 2, backend=backend) == 2
        one_error(capsys.readouterr().err, "finetune", f"cannot write {blocker / 'run'}", "Not a directory")


# ---------------------------------------------------------------- SIGTERM


def _sigterm_at(monkeypatch, step):
    """Send this process SIGTERM when the run reports progress for `step`."""
    real = Progress.update

    def update(self, done_step, **values):
        real(self, done_step, **values)
        if done_step == step:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Progress, "update", update)


def test_sigterm_ends_pretraining_with_one_line_and_exit_143(tmp_path, earlier, dataset, capsys, monkeypatch):
    logdir = copy_run(earlier, "pretrain", tmp_path / "run")
    handler = signal.getsignal(signal.SIGTERM)
    _sigterm_at(monkeypatch, 3)
    assert pretrain(dataset, logdir, 6) == 143
    one_error(capsys.readouterr().err, "pretrain", "terminated by SIGTERM",
              f"last checkpoint {logdir / 'checkpoint' / 'state_3.npz'} kept", "rerun the same command to resume")
    assert load_checkpoint(logdir / "checkpoint" / "state_3.npz").meta["epoch"] == 3
    assert not (logdir / LOCK_NAME).exists() and not temp_files(logdir)
    assert signal.getsignal(signal.SIGTERM) == handler  # the CLI's handler is there only while it runs
    monkeypatch.undo()
    assert pretrain(dataset, logdir, 4) == 0 and records(logdir, "epoch") == [1, 2, 3, 4]


def test_sigterm_while_a_checkpoint_is_written_keeps_the_last_one(tmp_path, earlier, capsys, monkeypatch):
    logdir = copy_run(earlier, "finetune", tmp_path / "run")
    before = snapshot(logdir)
    real = np.savez

    def savez(f, **arrays):
        f.write(b"PK\x03\x04")
        os.kill(os.getpid(), signal.SIGTERM)
        return real(f, **arrays)

    monkeypatch.setattr(shared.checkpoint.np, "savez", savez)
    assert finetune(logdir, 4) == 143
    one_error(capsys.readouterr().err, "finetune", "terminated by SIGTERM",
              f"last checkpoint {logdir / 'checkpoint' / 'state_1.npz'} kept")
    after = snapshot(logdir)
    assert {k: after[k] for k in before if k != "metrics.jsonl"} == {k: v for k, v in before.items()
                                                                      if k != "metrics.jsonl"}
    assert not (logdir / "checkpoint" / "state_2.npz").exists() and not temp_files(logdir)


# ---------------------------------------------------------------- resume from weights only


def _weights_only(src, dest, drop):
    ckpt = load_checkpoint(src)
    for group in drop:
        del ckpt.groups[group]
    save_checkpoint(dest, ckpt)
    return dest


@pytest.mark.parametrize("command, source, message", [
    ("pretrain", SHIPPED, "has no optimizer state (weights only); add resume_fresh_optimizer=true"),
    ("finetune", SHIPPED, "is not a fine-tuning checkpoint; to start fine-tuning from its policy pass it as "
                          "base_policy_path"),
    ("finetune", "weights_only", "has no optimizer state (weights only); add resume_fresh_optimizer=true"),
])
def test_resuming_from_a_checkpoint_without_optimizer_state_is_refused(tmp_path, earlier, dataset, capsys, command,
                                                                       source, message):
    logdir = copy_run(earlier, command, tmp_path / "run")
    if source == "weights_only":
        source = _weights_only(logdir / "checkpoint" / "state_1.npz", tmp_path / "w.npz",
                               ["actor_optimizer", "critic_optimizer"])
    before = snapshot(logdir)
    code = (pretrain(dataset, logdir, 4, f"resume={source}") if command == "pretrain"
            else finetune(logdir, 4, f"resume={source}"))
    assert code == 2
    one_error(capsys.readouterr().err, command, source, message)
    assert snapshot(logdir) == before


def test_resume_fresh_optimizer_continues_from_the_weights_alike_in_both_frameworks(tmp_path, earlier, dataset,
                                                                                     capsys):
    weights = _weights_only(earlier / "pretrain" / "checkpoint" / "state_2.npz", tmp_path / "w.npz", ["optimizer"])
    losses = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert pretrain(dataset, logdir, 3, f"resume={weights}", "resume_fresh_optimizer=true", backend=backend) == 0
        assert "(epoch 2) with a fresh optimizer" in capsys.readouterr().err
        assert records(logdir, "epoch") == [3]
        losses[backend] = records(logdir, "loss")
    np.testing.assert_allclose(losses["tf"], losses["torch"], rtol=1e-4)
    # the learning rate goes on from epoch 3 of the schedule; the optimizer state starts over
    full = tmp_path / "full"
    assert pretrain(dataset, full, 3) == 0
    assert records(tmp_path / "torch", "lr") == records(full, "lr")[2:]
    assert records(tmp_path / "torch", "loss") != records(full, "loss")[2:]
    ft = copy_run(earlier, "finetune", tmp_path / "ft")
    weights = _weights_only(ft / "checkpoint" / "state_1.npz", tmp_path / "wf.npz",
                            ["actor_optimizer", "critic_optimizer"])
    shutil.rmtree(ft / "checkpoint")
    assert finetune(ft, 3, f"resume={weights}", "resume_fresh_optimizer=true") == 0
    assert records(ft, "itr") == [0, 1, 2] and "with fresh optimizers" in capsys.readouterr().err


# ---------------------------------------------------------------- dropout: seeded, resumable


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_dropout_runs_repeat_and_resume_exactly(tmp_path, earlier, dataset, backend):
    drop = "model.network.dropout=0.3"
    full = tmp_path / "full"
    assert pretrain(dataset, full, 4, drop, "train.save_model_freq=2", backend=backend) == 0
    losses = records(full, "loss")
    # dropout is on: the losses differ from the run without it (which both frameworks share to 1e-4)
    assert abs(losses[0] - records(earlier / "pretrain", "loss")[0]) > 1e-3
    resumed = tmp_path / "resumed"
    shutil.copytree(full, resumed)
    (resumed / "checkpoint" / "state_4.npz").unlink()  # as if killed after epoch 4's metrics, before its save
    assert pretrain(dataset, resumed, 4, drop, "train.save_model_freq=2", backend=backend) == 0
    assert records(resumed, "loss") == losses
    if backend == "torch":  # a second run from scratch repeats the first
        again = tmp_path / "again"
        assert pretrain(dataset, again, 4, drop, "train.save_model_freq=2") == 0
        assert records(again, "loss") == losses


# ---------------------------------------------------------------- progress without a terminal


def test_progress_lines_when_stdout_is_not_a_terminal(tmp_path, dataset, capsys):
    assert pretrain(dataset, tmp_path / "pre", 3, quiet=False) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.startswith("pretrain [torch] epoch")]
    assert lines[0].startswith("pretrain [torch] epoch 1 (1/3) loss ") and "left" in lines[0]
    assert lines[-1].startswith("pretrain [torch] epoch 3 (3/3) loss ")
    assert finetune(tmp_path / "ft", 2, quiet=False) == 0
    out = capsys.readouterr().out
    assert "finetune [torch] itr 0 (1/2) mode eval reward" in out and "finetune [torch] itr 1 (2/2)" in out
    assert pretrain(dataset, tmp_path / "quiet", 2) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("pretrain [torch]")]
