"""Env workers as Ray actors (dppo/envs/ray_vector.py) on one real local Ray instance for the module: the
same numbers as the local vector env for the same seeds across episode boundaries (Hopper, robomimic Lift),
sim_state through the actors, a fine-tuning run with env.ray giving the same metrics (and resuming through
the actors), a dead actor ending the run with exit 4 and one line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import ray

from dppo.cli import main
from dppo.envs.ray_vector import RAY_MISSING, RayVectorEnv, check_reachable, import_ray, ray_init_kwargs
from shared.data.envs import make_vector_env
from shared.errors import ConfigError
from shared.settings.run import RayConfig
from tests.cli.vector_env_cases import (
    assert_same_metrics_to_rounding,
    assert_steps_like_the_local_env,
    hopper_spec,
    lift_spec,
)

DPPO = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
TINY = ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=6",
        "ft_denoising_steps=3", "train.n_steps=6", "env.n_envs=3", "train.batch_size=6", "train.update_epochs=2",
        "env.max_episode_steps=30", "normalization_path=data/hopper-medium-v2/normalization.npz",
        "train.val_freq=100", "train.save_model_freq=1"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (what RayVectorEnv starts itself when none is running, with room
    for two envs' worth of actors); the envs find it running and leave it up."""
    ray.init(**ray_init_kwargs(RayConfig(None, 4)))
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.mark.parametrize("make_spec", [hopper_spec, lift_spec], ids=["hopper", "lift"])
def test_same_numbers_as_the_local_vector_env_across_episode_ends(local_ray, make_spec) -> None:
    """3 envs in 2 actors (blocks of 2 and 1), stepped whole and group by group, end episodes (time limit, Hopper
    also falls) and reset within the step exactly as SyncVectorEnv does (assert_steps_like_the_local_env)."""
    spec = make_spec(3)
    local, remote = make_vector_env(spec), RayVectorEnv(spec, RayConfig(None, 2))
    try:
        assert_steps_like_the_local_env(local, remote)
    finally:
        local.close()
        remote.close()
    assert ray.is_initialized()  # the module's instance was not the env's to stop


def metrics(logdir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_finetuning_with_ray_workers_gives_the_same_metrics_and_resumes_through_them(local_ray, tmp_path) -> None:
    """3 iterations with the local vector env == 2 with Ray workers at the instance's address, then a
    resumed third (its envs' simulator state restored through the actors); with env.overlap the same to rounding."""
    base = ["finetune", "--config", DPPO, "--backend", "torch", "--quiet", *TINY]
    assert main([*base, f"logdir={tmp_path / 'local'}", "train.n_train_itr=3"]) == 0
    ray_args = [f"logdir={tmp_path / 'ray'}", f"env.ray.address={local_ray}", "env.ray.num_workers=2"]
    assert main([*base, *ray_args, "train.n_train_itr=2"]) == 0
    assert main([*base, *ray_args, "train.n_train_itr=3"]) == 0
    local, remote = metrics(tmp_path / "local"), metrics(tmp_path / "ray")
    assert [r["itr"] for r in remote] == [0, 1, 2]
    assert local == remote
    assert any(r["num_episodes"] > 0 for r in remote)  # episodes ended (and were reset) inside the actors
    # env.overlap on the actors: the two groups step beside sampling; the metrics of the run in turn, up to the
    # float rounding of the policy's calls on 2 and 1 rows instead of 3
    overlap_args = [f"logdir={tmp_path / 'overlap'}", f"env.ray.address={local_ray}", "env.ray.num_workers=2"]
    assert main([*base, *overlap_args, "env.overlap=true", "train.n_train_itr=3"]) == 0
    assert_same_metrics_to_rounding(local, metrics(tmp_path / "overlap"))


def test_a_dead_ray_worker_is_exit_4_with_one_line_and_keeps_checkpoints(local_ray, tmp_path, capsys) -> None:
    logdir = tmp_path / "crash"
    code = main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={logdir}", *TINY,
                 "env_name=tests.cli.crashing_env:CrashingHopper-v0", "env.ray.num_workers=2",
                 "train.n_train_itr=20", "normalization_path=null"])
    err = capsys.readouterr().err
    assert code == 4, err
    errors = [line for line in err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "environment step failed" in errors[0] and "Ray environment worker died" in errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert os.listdir(logdir / "checkpoint")
    assert ray.is_initialized()


def test_settings_are_checked_in_one_line(local_ray, tmp_path, capsys, monkeypatch) -> None:
    base = ["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={tmp_path}", *TINY]
    assert main([*base, "env.ray.num_workers=4"]) == 2
    assert main([*base, "env.ray.num_workers=1", "env.asynchronous=true"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(err) == 2 and "env.ray.num_workers=4 exceeds env.n_envs=3" in err[0]
    assert "env.asynchronous and env.ray" in err[1]
    assert main([*base, "env.ray.num_workers=1", "env_name=nosuch-v0"]) == 2  # raised inside the actor
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(err) == 1 and "a Ray environment worker could not build its envs" in err[0]
    assert "ConfigError: unknown environment 'nosuch-v0'" in err[0]
    with pytest.raises(ConfigError, match="no Ray cluster answers there"):  # rather than Ray's minutes of retries
        check_reachable("127.0.0.1:1")
    with pytest.raises(ConfigError, match="expected null, 'auto', 'HOST:PORT'"):
        check_reachable("head-node")
    check_reachable(local_ray)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(ConfigError, match="pip install 'ray"):
        import_ray()
    assert main([*base, "env.ray.num_workers=1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(err) == 1 and err[0].endswith(RAY_MISSING)


def test_eval_with_ray_workers_prints_the_same_returns(local_ray, capsys) -> None:
    args = ["eval", "--config", DPPO, "--backend", "torch", "--episodes", "2", "env.max_episode_steps=40",
            "base_policy_path=data/checkpoints/hopper_pretrain_diffusion_mlp_e40.npz",
            "normalization_path=data/hopper-medium-v2/normalization.npz"]
    assert main(args) == 0
    local = capsys.readouterr().out
    assert main([*args, "env.ray.num_workers=2"]) == 0
    assert capsys.readouterr().out == local and "D4RL score" in local
    assert main([*args, "env.ray.num_workers=3"]) == 2  # the setting reaches eval's envs: 3 workers, 2 envs
    assert "env.ray.num_workers=3 exceeds env.n_envs=2" in capsys.readouterr().err
