"""Upstream's robomimic configs (tests/fixtures/upstream_cfg/cfg/robomimic, values unchanged) with `dppo`: the env
part reads into typed settings and builds the task's robosuite envs, DPPO fine-tunes Can from a fresh diffusion
MLP on both backends logging upstream's success rate, `dppo eval` reports it, and a dead env worker stops the run
with one message and exit 4, checkpoints kept."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from dppo.cli import main
from dppo.envs.runtime import env_spec
from shared.data.dataset import Normalization
from shared.data.envs import make_env
from shared.data.robomimic import RobomimicSuite, make_robomimic_env
from shared.errors import ConfigError
from shared.settings import EvalConfig, FinetuneConfig, load_settings

UPSTREAM = Path("tests/fixtures/upstream_cfg/cfg/robomimic")
CAN = str(UPSTREAM / "finetune/can/ft_ppo_diffusion_mlp.yaml")
# DPPO's fine-tuning config of each task and the diffusion eval configs (vendored with the rest of upstream's)
RUN = [*(str(UPSTREAM / "finetune" / task / "ft_ppo_diffusion_mlp.yaml") for task in ("lift", "can", "square",
                                                                                         "transport")),
       *(str(UPSTREAM / "eval" / task / "eval_diffusion_mlp.yaml") for task in ("can", "square"))]
# a short run: 2 envs, episodes of 3 policy steps (12 env steps) so that some finish in a 4-step iteration
SHORT = ["base_policy_path=null", "wandb=null", "env.n_envs=2", "train.n_steps=4", "env.max_episode_steps=12",
         "train.batch_size=8", "train.update_epochs=1", "denoising_steps=5", "ft_denoising_steps=2",
         "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]"]


@pytest.fixture
def robomimic_dirs(tmp_path, monkeypatch) -> Path:
    """DPPO_DATA_DIR with a normalization.npz in upstream's layout (robomimic/<task>/) for every task."""
    monkeypatch.setenv("DPPO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    for task, (obs_dim, action_dim) in {"lift": (19, 7), "can": (23, 7), "square": (23, 7),
                                        "transport": (59, 14)}.items():
        (tmp_path / "data" / "robomimic" / task).mkdir(parents=True)
        Normalization(np.full(obs_dim, -1.5), np.full(obs_dim, 1.5), np.full(action_dim, -1.0),
                      np.full(action_dim, 1.0)).save(tmp_path / "data" / "robomimic" / task / "normalization.npz")
    return tmp_path


def test_vendored_robomimic_configs_read_and_build_their_tasks(robomimic_dirs) -> None:
    for path in RUN:
        cfg = load_settings(path)
        assert isinstance(cfg, EvalConfig if "/eval/" in path else FinetuneConfig), path
        suite = cfg.env_suite
        assert isinstance(suite, RobomimicSuite) and suite.model_seed == cfg.seed == 42
        assert Path(suite.env_meta) == Path("data/robomimic/env_meta", f"{cfg.env_name}.json").resolve()
        assert cfg.env.best_reward_threshold_for_success == 1.0 and cfg.env.wrappers.multi_step.reset_within_step
        spec = env_spec(cfg, n_envs=1)
        env = make_env(spec)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (cfg.cond_steps, cfg.obs_dim) and env.action_space.shape == (cfg.act_steps,
                                                                                          cfg.action_dim)
        assert np.all(np.abs(obs) < 5)  # normalized by the file the config names
        env.close()


def _records(logdir: Path) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_can_finetunes_from_a_fresh_policy_logs_success_and_evaluates(robomimic_dirs, capsys, backend) -> None:
    logdir = robomimic_dirs / backend
    assert main(["finetune", "--config", CAN, "--backend", backend, "--quiet", f"logdir={logdir}", *SHORT,
                 "train.n_train_itr=2", "train.val_freq=2"]) == 0
    recs = _records(logdir)
    assert [(r["itr"], r["eval"]) for r in recs] == [(0, True), (1, False)]
    for r in recs:
        assert r["num_episodes"] == 2  # each env finished one 3-step episode
        assert r["success_rate"] == 0.0 and r["avg_best_reward"] == 0.0  # a random policy never lifts the can
    assert "pg_loss" in recs[1]
    assert main(["eval", "--config", CAN, "--backend", backend, "--episodes", "2", *SHORT,
                 f"base_policy_path={logdir / 'checkpoint' / 'state_1.npz'}"]) == 0
    assert "over 2 episodes; success rate 0.000" in capsys.readouterr().out


def test_a_task_success_is_a_reward_of_one_and_counts_by_upstreams_rule() -> None:
    """Lift with its cube lifted 10 cm by hand: robosuite's sparse reward is 1 and robomimic's success flag set;
    a chunk of act_steps such steps is an episode's best reward of 1, which meets the threshold of 1."""
    from shared.data.envs import success_metrics

    env = make_robomimic_env("lift")
    env.reset(seed=0)
    rs = env.robosuite_env
    start, _ = rs.sim.model.get_joint_qpos_addr(rs.cube.joints[0])
    rs.sim.data.qpos[start + 2] += 0.1
    rs.sim.forward()
    _, reward, _, _, info = env.step(np.zeros(7))
    assert reward == 1.0 and info == {"is_success": True}
    metrics = success_metrics([np.array([0.0, 2.0, 4.0]), np.array([3.0, 3.0]), np.array([0.0])], 4, 1.0)
    assert metrics == {"success_rate": pytest.approx(1 / 3), "avg_best_reward": pytest.approx((1 + 0.75 + 0) / 3)}


def _worker_pids() -> list[int]:
    """This process's env workers (multiprocessing spawn children; not its resource tracker)."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                pids.append(int(pid))
    return pids


def test_a_dead_robosuite_worker_is_one_message_and_keeps_checkpoints(robomimic_dirs, capsys) -> None:
    logdir = robomimic_dirs / "crash"
    first = logdir / "checkpoint" / "state_0.npz"

    def kill_a_worker() -> None:
        deadline = time.time() + 300
        while not first.exists() and time.time() < deadline:
            time.sleep(0.05)
        workers = _worker_pids()
        if workers:
            os.kill(workers[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    code = main(["finetune", "--config", CAN, "--backend", "torch", "--quiet", f"logdir={logdir}", *SHORT,
                 "env.asynchronous=true", "train.n_train_itr=200", "train.save_model_freq=1", "train.val_freq=100"])
    killer.join()
    err = capsys.readouterr().err
    assert code == 4, err
    errors = [line for line in err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    # the worker dies wherever the loop is when the signal lands: inside a step, or in the reset that starts
    # the next iteration; either is the same one line
    assert ("environment step failed" in errors[0] or "environment reset failed" in errors[0]), errors[0]
    assert "rerun the same command to resume" in errors[0]
    assert first.exists()


def test_a_resumed_can_run_goes_on_as_an_uninterrupted_one(robomimic_dirs) -> None:
    """Episodes that span iterations (no reset between them): the checkpoint's robosuite state (physics,
    grippers, observation timers, controller references, RNG) lets the run continue bit for bit."""
    args = [*SHORT, "env.reset_at_iteration=false", "env.max_episode_steps=24", "train.val_freq=100",
            "train.save_model_freq=1"]
    full, resumed = robomimic_dirs / "full", robomimic_dirs / "resumed"
    assert main(["finetune", "--config", CAN, "--backend", "torch", "--quiet", f"logdir={full}", *args,
                 "train.n_train_itr=3"]) == 0
    assert main(["finetune", "--config", CAN, "--backend", "torch", "--quiet", f"logdir={resumed}", *args,
                 "train.n_train_itr=2"]) == 0
    assert main(["finetune", "--config", CAN, "--backend", "torch", "--quiet", f"logdir={resumed}", *args,
                 "train.n_train_itr=3"]) == 0
    a, b = _records(full), _records(resumed)
    assert [r["itr"] for r in b] == [0, 1, 2] and b[2]["env_reset"] is False
    for key in ("pg_loss", "v_loss", "approx_kl", "avg_episode_reward", "num_episodes", "success_rate"):
        assert a[2][key] == b[2][key], key


def test_without_robosuite_a_robomimic_config_stops_with_one_line_naming_the_install(robomimic_dirs, monkeypatch,
                                                                                     capsys) -> None:
    import shared.data.robosuite_compat as compat

    monkeypatch.setattr(compat, "_loaded", None)
    monkeypatch.setitem(sys.modules, "robosuite", None)  # import robosuite raises ImportError
    code = main(["finetune", "--config", CAN, "--backend", "torch", "--quiet",
                 f"logdir={robomimic_dirs / 'none'}", *SHORT, "train.n_train_itr=1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("dppo finetune: error:")]
    assert len(lines) == 1 and "robosuite 1.4.1" in lines[0] and "scripts/setup.sh" in lines[0]
    assert "--no-deps robosuite==1.4.1" in lines[0]
    monkeypatch.setitem(sys.modules, "robosuite", types.SimpleNamespace(__version__="1.5.2"))
    with pytest.raises(ConfigError, match="need robosuite 1.4.1 .upstream DPPO's., found 1.5.2"):
        compat.import_robosuite()
