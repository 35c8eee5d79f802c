"""`dppo eval` of a fine-tuned checkpoint against the success rate its run logged (issue 22; upstream's users found
them disagreeing, irom-princeton/dppo#29). A short DPPO run on robomimic Lift logs an evaluation iteration after a
training one and saves its checkpoint there; `dppo eval --as-logged` of that checkpoint must give the logged
per-episode returns and success flags exactly, on each backend, and upstream's eval config must evaluate the same
fine-tuned policy as the fine-tuning config.

Lift's sparse reward is 0 for every episode a random policy plays, so a success rate computed from it could not
tell a right evaluation from a wrong one. The env metadata here turns on robosuite's reward shaping (reaching,
grasping, lifting: a dense reward in [0, 1]), and the success threshold is set inside the range the episodes' best
rewards span, so some of the logged episodes succeed and some do not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dppo.algorithms.agents import initial_params
from dppo.cli import main
from shared.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shared.settings import load_settings

UPSTREAM = Path("tests/fixtures/upstream_cfg/cfg/robomimic")
LIFT = str(UPSTREAM / "finetune/lift/ft_ppo_diffusion_mlp.yaml")
LIFT_EVAL = "configs/robomimic/lift/eval_diffusion_mlp.yaml"  # upstream's eval config with Lift's sizes
# 2 envs, episodes of 3 policy steps (12 env steps), 6 steps an iteration: every iteration's envs finish 4 episodes.
# Iterations 0 (evaluation), 1 (training), 2 (evaluation, saved: the fine-tuned policy). Two of the 5 denoising
# steps are fine-tuned, so the checkpoint's actor_ft and frozen base actor differ.
SIZES = ["env.max_episode_steps=12", "denoising_steps=5", "env.best_reward_threshold_for_success=0.02"]
RUN = ["wandb=null", "base_policy_path=null", "env.n_envs=2", "train.n_steps=6", "train.n_train_itr=3",
       "train.val_freq=2", "train.save_model_freq=2", "train.batch_size=8", "train.update_epochs=1",
       "ft_denoising_steps=2", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]", *SIZES]


@pytest.fixture
def shaped_lift(tmp_path, monkeypatch) -> list[str]:
    """The repository's Lift normalization (DPPO_DATA_DIR=data) and Lift's env metadata with reward shaping on;
    returns the override naming that metadata."""
    monkeypatch.setenv("DPPO_DATA_DIR", str(Path("data").resolve()))
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path / "logs"))
    meta = json.loads(Path("data/robomimic/env_meta/lift.json").read_text())
    assert meta["env_kwargs"]["reward_shaping"] is False  # upstream's sparse reward, turned on for this test only
    meta["env_kwargs"]["reward_shaping"] = True
    (tmp_path / "lift_shaped.json").write_text(json.dumps(meta))
    return [f"robomimic_env_cfg_path={tmp_path / 'lift_shaped.json'}"]


def _records(logdir: Path) -> list[dict]:
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def _eval(args: list[str], out: Path) -> dict:
    assert main(["eval", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_eval_of_a_finetuned_checkpoint_reproduces_the_logged_evaluation(tmp_path, capsys, shaped_lift,
                                                                        backend) -> None:
    logdir = tmp_path / backend
    args = [*RUN, *shaped_lift]
    assert main(["finetune", "--config", LIFT, "--backend", backend, "--quiet", f"logdir={logdir}", *args]) == 0
    recs = _records(logdir)
    assert [(r["itr"], r["eval"]) for r in recs] == [(0, True), (1, False), (2, True)] and "pg_loss" in recs[1]
    logged = recs[2]
    assert logged["num_episodes"] == 4 and 0 < logged["success_rate"] < 1  # successes and failures both
    ckpt_path = logdir / "checkpoint" / "state_2.npz"
    model = load_checkpoint(ckpt_path).groups["model"]
    assert any(not np.array_equal(model[k], model["actor_ft." + k[len("actor."):]]) for k in model
               if k.startswith("actor."))  # fine-tuned: evaluating the base network would give other returns

    replay = _eval(["--config", LIFT, "--backend", backend, "--as-logged", *args, f"base_policy_path={ckpt_path}"],
                   tmp_path / "replay.json")
    assert replay["iteration"] == 2 and replay["episodes"] == logged["num_episodes"]
    assert replay["returns"] == logged["episode_returns"]  # bit for bit: same policy, env states, noise
    assert replay["successes"] == logged["episode_successes"]
    assert (replay["success_rate"], replay["avg_best_reward"]) == (logged["success_rate"], logged["avg_best_reward"])
    assert "iteration 2 as logged (2 envs, 6 steps): return" in capsys.readouterr().out

    # upstream's eval config evaluates the same fine-tuned policy (actor_ft on the run's K last steps)
    fresh = ["--backend", backend, "--episodes", "1", "--seed", "0"]  # one env: robosuite builds take 1-2 s each
    policy = [*shaped_lift, f"base_policy_path={ckpt_path}"]
    by_ft = _eval(["--config", LIFT, *fresh, *RUN, *policy], tmp_path / "ft.json")
    by_eval = _eval(["--config", LIFT_EVAL, *fresh, *SIZES, "model.network.mlp_dims=[16,16,16]", *policy],
                    tmp_path / "eval.json")
    assert by_eval["returns"] == by_ft["returns"] and by_eval["successes"] == by_ft["successes"]


def test_as_logged_refuses_what_it_cannot_rerun(tmp_path, capsys, shaped_lift) -> None:
    """One line each, before any env is built: --episodes/--seed (or --frames) with it, a config whose rollout differs
    from the run's, a checkpoint without the envs' state at an evaluation iteration's start (here: the run's starting
    weights saved as iteration 0's fine-tuning checkpoint, without them)."""
    args = [*RUN, *shaped_lift]
    cfg = load_settings(LIFT, args)
    bare = tmp_path / "bare.npz"
    save_checkpoint(bare, Checkpoint({"model": initial_params(cfg)},
                                     {"kind": "finetune", "itr": 0, "algorithm": "ppo", "config": cfg.raw}))
    base = ["eval", "--config", LIFT, "--backend", "torch", "--as-logged"]
    cases = [([*base, "--episodes", "4", *args, f"base_policy_path={bare}"], "drop --episodes and --seed"),
             ([*base, "--frames", str(tmp_path / "f.png"), *args, f"base_policy_path={bare}"],
              "--frames draws the episodes dppo eval runs itself, not a rerun iteration"),
             ([*base, *args, "env.n_envs=3", f"base_policy_path={bare}"],
              "this config's env.n_envs is 3, the run that saved"),
             ([*base, *args, f"base_policy_path={bare}"], "holds no envs' state from the start of an evaluation")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("dppo eval: error:")]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
