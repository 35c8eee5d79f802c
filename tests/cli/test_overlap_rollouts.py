"""env.overlap: the envs in two worker processes (dppo/envs/process_vector.py), one group stepping while the
policy samples for the other (dppo/training/finetune.py steps_overlapped). The workers give the local vector
env's numbers; an overlapped rollout gives the in-turn rollout's steps, rows, noise and episode marks; a
fine-tuning run with it gives the same metrics (to the float rounding of half-batch policy calls), resumes
exactly, and bad settings, an algorithm without one noise row per env, and a dying worker are one line each."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dppo.cli import main
from dppo.envs.process_vector import ProcessVectorEnv
from dppo.training.finetune import noise_batch_axis, rollout
from shared.algorithms.idql import noise_shape as idql_noise_shape
from shared.data.dataset import Normalization
from shared.data.envs import EnvSpec, make_vector_env
from shared.data.robomimic import RobomimicImageSuite, env_meta_path
from shared.errors import ConfigError
from tests.cli.vector_env_cases import assert_same_metrics_to_rounding, assert_steps_like_the_local_env, hopper_spec

DPPO = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
PROPRIO_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")  # Lift's 9 proprioceptive numbers
TINY = ["model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", "denoising_steps=6",
        "ft_denoising_steps=3", "train.n_steps=6", "env.n_envs=5", "train.batch_size=6", "train.update_epochs=2",
        "env.max_episode_steps=30", "normalization_path=data/hopper-medium-v2/normalization.npz",
        "train.val_freq=2", "train.save_model_freq=1"]


def test_worker_processes_give_the_local_vector_envs_numbers_across_episode_ends() -> None:
    """3 Hopper envs in 2 processes (blocks of 2 and 1), stepped whole and group by group: SyncVectorEnv's numbers
    (assert_steps_like_the_local_env); the workers are gone once closed. The batching is the Ray actors' too,
    checked there on robomimic Lift as well (tests/cli/test_ray_rollouts.py)."""
    spec = hopper_spec(3)
    local, remote = make_vector_env(spec), ProcessVectorEnv(spec, 2)
    try:
        assert_steps_like_the_local_env(local, remote)
    finally:
        local.close()
        remote.close()
    assert not any(p.is_alive() for p in remote._procs)


class RowwiseAgent:
    """A policy whose every row depends on that row's observation and noise only (exactly, in numpy): what
    checks that the overlapped loop hands each env its own observation and noise rows, in step order."""

    @staticmethod
    def noise_shape(n: int) -> tuple[int, ...]:
        return (3, n, 4, 3)  # (chain, N, Ta, Da): the batch on axis 1, as a diffusion policy's

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        actions = np.tanh(0.3 * noise[0] + obs[:, -1:, :3]).astype(np.float32)  # (N, Ta, Da)
        return {"actions": actions, "chains": np.moveaxis(noise, 1, 0).copy()}  # (N, 3, Ta, Da)


@pytest.mark.parametrize("overlap_steps", [1, 9])
def test_an_overlapped_rollout_gives_the_in_turn_rollouts_steps(overlap_steps) -> None:
    """5 envs (groups of 3 and 2) through episode ends: every array of the rollout equal to the in-turn
    rollout's of the local vector env, bit for bit."""
    spec = hopper_spec(5)
    agent = RowwiseAgent()
    local, remote = make_vector_env(spec), ProcessVectorEnv(spec, 2)
    try:
        obs_a = local.reset(seed=list(range(5)))[0]
        obs_b = remote.reset(seed=list(range(5)))[0]
        a = rollout(agent, local, obs_a, overlap_steps, 4, False, 3, 7, agent.noise_shape)
        b = rollout(agent, remote, obs_b, overlap_steps, 4, False, 3, 7, agent.noise_shape, overlap=True)
    finally:
        local.close()
        remote.close()
    assert len(b["rewards"]) == overlap_steps
    for key in ("obs", "rewards", "terminated", "first", "next_obs", "next_obs_steps"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["samples"].keys() == b["samples"].keys()
    for key in a["samples"]:
        np.testing.assert_array_equal(a["samples"][key], b["samples"][key], err_msg=key)
    if overlap_steps > 1:
        assert a["first"][1:].sum() > 0  # episodes ended (and were reset) inside the workers
    assert b["env_seconds"] > 0


class RowwiseCameraAgent:
    """RowwiseAgent's rule on a camera observation's state, its frames kept as a sample to compare."""

    @staticmethod
    def noise_shape(n: int) -> tuple[int, ...]:
        return (2, n, 2, 7)

    def act(self, obs: dict, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        actions = np.tanh(0.3 * noise[0] + obs["state"][:, -1:, :7]).astype(np.float32)  # (N, Ta, Da)
        return {"actions": actions, "frames": obs["rgb"].copy()}


def test_an_overlapped_rollout_of_camera_envs_gives_the_in_turn_rollouts_frames_and_states() -> None:
    """Camera observations (dicts of state and uint8 frames) through the worker blocks and the overlapped loop:
    the same frames, states, rewards and episode marks as gymnasium's AsyncVectorEnv stepped in turn (both render
    in worker processes, never beside this process's TensorFlow)."""
    norm = Normalization(np.full(9, -2.0), np.full(9, 2.0), np.full(7, -1.0), np.full(7, 1.0))
    suite = RobomimicImageSuite(str(env_meta_path("lift-img")), PROPRIO_KEYS, ("robot0_eye_in_hand_image",))
    spec = EnvSpec("lift", 3, 1, 2, 5, norm, True, suite)  # 5-step episodes: 3 chunks each, resets within
    agent = RowwiseCameraAgent()
    local, remote = make_vector_env(spec), ProcessVectorEnv(spec, 2)
    try:
        a = rollout(agent, local, local.reset(seed=[1, 2, 3])[0], 4, 2, False, 0, 0, agent.noise_shape)
        b = rollout(agent, remote, remote.reset(seed=[1, 2, 3])[0], 4, 2, False, 0, 0, agent.noise_shape,
                    overlap=True)
    finally:
        local.close()
        remote.close()
    assert b["obs"]["rgb"].shape == (4, 3, 1, 3, 96, 96) and b["obs"]["rgb"].dtype == np.uint8
    for key in ("state", "rgb"):
        np.testing.assert_array_equal(a["obs"][key], b["obs"][key], err_msg=key)
        np.testing.assert_array_equal(a["next_obs_steps"][key], b["next_obs_steps"][key], err_msg=key)
        np.testing.assert_array_equal(a["next_obs"][key], b["next_obs"][key], err_msg=key)
    np.testing.assert_array_equal(a["samples"]["frames"], b["samples"]["frames"])
    np.testing.assert_array_equal(a["rewards"], b["rewards"])
    np.testing.assert_array_equal(a["first"], b["first"])
    assert a["first"][1:].sum() == 3  # each env's episode ended once, within a step


def test_the_noise_rows_split_are_one_per_env_or_the_algorithm_is_refused() -> None:
    assert noise_batch_axis(RowwiseAgent.noise_shape) == 1
    assert noise_batch_axis(lambda n: (n, 12)) == 0  # a Gaussian policy's
    with pytest.raises(ConfigError, match="one row of sampling noise per env"):  # IDQL: S chains per env, one axis
        noise_batch_axis(lambda n: idql_noise_shape(5, 4, n, 4, 3))


def metrics(logdir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_finetuning_with_overlap_gives_the_same_metrics_and_resumes_exactly(backend, tmp_path) -> None:
    """3 iterations (an evaluation one among them) in turn vs overlapped: the same iterations, episodes and
    resets, returns equal to the float rounding of half-batch policy calls; 2 overlapped + a resumed third ==
    3 overlapped, exactly."""
    base = ["finetune", "--config", DPPO, "--backend", backend, "--quiet", *TINY, "train.n_train_itr=3"]
    assert main([*base, f"logdir={tmp_path / 'turn'}"]) == 0
    assert main([*base, f"logdir={tmp_path / 'overlap'}", "env.overlap=true"]) == 0
    resumed = [*base[:-1], f"logdir={tmp_path / 'resumed'}", "env.overlap=true"]
    assert main([*resumed, "train.n_train_itr=2"]) == 0
    assert main([*resumed, "train.n_train_itr=3"]) == 0
    turn, overlap = metrics(tmp_path / "turn"), metrics(tmp_path / "overlap")
    assert metrics(tmp_path / "resumed") == overlap
    assert [r["eval"] for r in overlap] == [True, False, True] and any(r["num_episodes"] for r in overlap)
    assert_same_metrics_to_rounding(turn, overlap)


def test_overlap_settings_are_checked_in_one_line(tmp_path, capsys) -> None:
    base = ["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={tmp_path}", *TINY,
            "env.overlap=true"]
    assert main([*base, "env.asynchronous=true"]) == 2
    assert main([*base, "env.n_envs=1"]) == 2
    assert main([*base, "env.ray.num_workers=1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(err) == 3, err
    assert "drop env.asynchronous" in err[0] and "env.n_envs >= 2" in err[1] and "num_workers >= 2" in err[2]
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_dead_worker_process_is_exit_4_with_one_line_and_keeps_checkpoints(tmp_path, capsys) -> None:
    logdir = tmp_path / "crash"
    code = main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={logdir}", *TINY,
                 "env_name=tests.cli.crashing_env:CrashingHopper-v0", "env.overlap=true", "train.n_train_itr=20",
                 "train.val_freq=100", "normalization_path=null"])
    err = capsys.readouterr().err
    assert code == 4, err
    errors = [line for line in err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "environment step failed" in errors[0] and "environment worker" in errors[0] and "died" in errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert os.listdir(logdir / "checkpoint")


def test_a_worker_that_cannot_build_its_envs_is_one_config_line(tmp_path, capsys) -> None:
    assert main(["finetune", "--config", DPPO, "--backend", "torch", "--quiet", f"logdir={tmp_path}", *TINY,
                 "env.overlap=true", "env_name=nosuch-v0", "normalization_path=null"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(err) == 1 and "an environment worker could not build its envs" in err[0]
    assert "unknown environment 'nosuch-v0'" in err[0]
