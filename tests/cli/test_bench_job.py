"""`dppo bench --job CONFIG`: a real config's iterations profiled end to end by the fine-tuning driver, the time
split into the phases the loop and the trainers mark, the rest reported as unmarked, env steps per second."""

from __future__ import annotations

import json
import sys

import pytest

from dppo.cli import main

SMALL_DPPO = ["env.n_envs=2", "train.n_steps=3", "train.batch_size=6", "env.max_episode_steps=20",
              "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=4",
              "ft_denoising_steps=2"]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_the_job_profile_splits_dppo_iterations_into_phases_that_add_up(backend, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "job.json"
    assert main(["bench", "--job", "configs/hopper/finetune_ppo_diffusion_mlp.yaml", "--backend", backend,
                 "--iterations", "3", "--warmup", "1", "--json", str(out), *SMALL_DPPO, "train.val_freq=100"]) == 0
    p = json.loads(out.read_text())
    phases = {r["phase"]: r for r in p["phases"]}
    assert p["iterations"] == 3 and p["env_steps"] == 3 * 3 * 2 * 4  # iterations x n_steps x n_envs x act_steps
    assert phases["env stepping"]["calls"] == phases["action sampling"]["calls"] == 9
    for name in ("log-probabilities and values", "GAE and returns", "update", "metrics and logging"):
        assert phases[name]["calls"] == 3, name
    assert abs(sum(r["share"] for r in p["phases"]) - 1.0) < 1e-6  # the phases and the rest make the wall time
    assert p["env_steps_per_second"] > 0
    o = p["overlap"]  # nothing overlaps yet: the iteration is at least env + policy, over the longer of the two
    assert o["env_seconds"] == phases["env stepping"]["seconds"] and 0 < o["policy_seconds"] < p["wall_seconds"]
    assert o["ratio"] * max(o["env_seconds"], o["policy_seconds"]) == pytest.approx(p["wall_seconds"])
    assert o["ratio"] >= 1 + min(o["env_seconds"], o["policy_seconds"]) / max(o["env_seconds"], o["policy_seconds"])
    if sys.platform.startswith("linux"):  # the kernel's own peak (kB), read after the profile's
        with open("/proc/self/status") as status:
            hwm = int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024
        assert 0.5 * hwm < p["peak_memory_mib"]["process"] <= hwm  # MiB, not KiB or bytes
    text = capsys.readouterr().out
    assert "env steps/s" in text and "update" in text and "peak resident memory" in text
    assert "iteration / max(env stepping" in text and "target 1.2x" in text


def test_the_job_profile_of_an_off_policy_config_shows_its_replay_phases(tmp_path, monkeypatch):
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "job.json"
    assert main(["bench", "--job", "tests/fixtures/upstream_cfg/cfg/gym/finetune/hopper-v2/sac_mlp.yaml",
                 "--iterations", "4", "--json", str(out), "train.n_explore_steps=0", "train.batch_size=2",
                 "train.critic_replay_ratio=2", "train.actor_replay_ratio=1", "model.actor.mlp_dims=[16,16]",
                 "model.critic.mlp_dims=[16,16]", "train.val_freq=100", "wandb=null"]) == 0
    phases = {r["phase"]: r for r in json.loads(out.read_text())["phases"]}
    assert phases["replay buffer"]["calls"] == phases["update"]["calls"] == 4


def test_overrides_without_a_job_are_refused_in_one_line(capsys):
    assert main(["bench", "train.n_steps=3"]) == 2
    err = capsys.readouterr().err
    assert "overrides go with --job" in err and err.count("\n") == 1


def test_with_env_overlap_the_profile_counts_the_workers_stepping_beside_the_loop(tmp_path, monkeypatch, capsys):
    """env.overlap: the loop only waits for part of the envs' time; the workers' own stepping time is reported
    beside the phases and is the env side of the overlap bound; env steps are counted once per policy step."""
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "job.json"
    assert main(["bench", "--job", "configs/hopper/finetune_ppo_diffusion_mlp.yaml", "--iterations", "2",
                 "--warmup", "1", "--json", str(out), *SMALL_DPPO, "train.val_freq=100", "env.overlap=true"]) == 0
    p = json.loads(out.read_text())
    phases = {r["phase"]: r for r in p["phases"]}
    assert p["env_overlap"] and p["env_steps"] == 2 * 3 * 2 * 4
    assert phases["env stepping"]["calls"] == phases["action sampling"]["calls"] == 2 * 3 * 2  # per group
    workers = {r["phase"]: r for r in p["beside"]}["env stepping in workers"]["seconds"]
    o = p["overlap"]
    assert workers > 0 and o["env_seconds"] == max(workers, phases["env stepping"]["seconds"])
    assert abs(sum(r["share"] for r in p["phases"]) - 1.0) < 1e-6  # the beside time is not part of the wall time
    text = capsys.readouterr().out
    assert "env stepping in workers (beside)" in text and "env.overlap: one half of the envs steps" in text
