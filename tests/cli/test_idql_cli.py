"""Upstream's IDQL configs (ft_idql_diffusion_mlp.yaml of hopper, walker2d, halfcheetah; values unchanged)
read as IDQL, run from upstream's state_3000.pt on both backends with only length overrides, resume
exactly with their replay buffer, target critic and three optimizers, and refuse a bad IDQL key in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from shared.settings.idql import IDQLConfig
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

IDQL = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_idql_diffusion_mlp.yaml") for env in ("hopper", "walker2d",
                                                                                           "halfcheetah")}
# replay_ratio sets how many minibatches an iteration runs, eval_sample_num how many chunks each action scores:
# shortened like the number of iterations
SHORT = ["train.n_steps=6", "env.n_envs=2", "train.batch_size=8", "train.replay_ratio=2", "train.eval_sample_num=3",
         "env.max_episode_steps=16", "wandb=null"]
GROUPS = ("model", "actor_optimizer", "critic_q_optimizer", "critic_v_optimizer", "replay_buffer")


def _metrics(root) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_upstream_idql_configs_read_as_idql_with_their_values():
    for env, path in IDQL.items():
        cfg = load_settings(path)
        assert isinstance(cfg, IDQLConfig), env
        s = cfg.idql
        assert (s.critic_tau, s.num_sample, s.scale_reward_factor, s.gamma, s.n_critic_warmup_itr) == (
            0.001, 20, 0.01, 0.99, 5)
        assert s.use_expectile_exploration and s.eval_deterministic and (s.expectile, s.critic_hyperparam) == (0.8, 0.7)
        assert s.buffer_transitions == 25000 * 40 and s.minibatches == 500 * 40 // 1000 * 128
        assert not cfg.critic_q.residual_tyle and cfg.critic_v.residual_style  # upstream: plain Q MLPs, residual V


@pytest.mark.usefixtures("upstream_env")
def test_upstream_idql_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", IDQL["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_train_itr=1", "train.force_train=true", "train.n_critic_warmup_itr=0",
                     f"logdir={logdir}"]) == 0
        logs[backend] = _metrics(logdir)[0]  # one training iteration, actor stepped (one TF update compiled)
    assert not logs["torch"]["eval"] and logs["torch"]["buffer_transitions"] == 12
    for key in ("critic_v_loss", "critic_q_loss", "actor_loss"):  # float32 twins: rounding only
        np.testing.assert_allclose(logs["tf"][key], logs["torch"][key], rtol=1e-4, err_msg=key)


@pytest.mark.usefixtures("upstream_env")
def test_idql_run_resumes_exactly_with_its_replay_buffer_and_target_critic(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run = ["finetune", "--config", IDQL["hopper"], "--backend", "torch", "--quiet", *SHORT, "train.save_model_freq=1",
           "train.val_freq=3", "train.n_critic_warmup_itr=2"]
    assert main([*run, "train.n_train_itr=4", f"logdir={whole}"]) == 0
    assert main([*run, "train.n_train_itr=2", f"logdir={split}"]) == 0
    saved = load_checkpoint(str(split / "checkpoint" / "state_1.npz"))
    assert saved.meta["algorithm"] == "idql" and saved.group("replay_buffer")["rewards"].shape == (12,)
    assert main([*run, "train.n_train_itr=4", f"logdir={split}"]) == 0  # a training, then an evaluation iteration
    assert "resumed from" in capsys.readouterr().err
    a, b = (load_checkpoint(str(d / "checkpoint" / "state_3.npz")) for d in (whole, split))
    assert a.group("replay_buffer")["rewards"].shape == (24,)  # iterations 1 and 2 trained (0 and 3 evaluate)
    for group in GROUPS:
        for name, value in a.group(group).items():
            np.testing.assert_array_equal(value, b.group(group)[name], err_msg=f"{group}/{name}")
    metrics = _metrics(whole)
    assert [m["eval"] for m in metrics] == [True, False, False, True]
    model = a.group("model")
    assert not np.array_equal(model["critic_q_target.Q1.moduleList.0.linear_1.weight"],
                              model["critic_q.Q1.moduleList.0.linear_1.weight"])


def test_idql_expectile_outside_the_open_unit_interval_is_one_line(capsys):
    assert main(["finetune", "--config", IDQL["walker2d"], "--backend", "torch", "train.expectile=1.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.expectile" in err and "strictly between 0 and 1" in err
