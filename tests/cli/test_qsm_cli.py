"""Upstream's QSM configs (ft_qsm_diffusion_mlp.yaml of hopper, walker2d, halfcheetah; values unchanged) read
as QSM, run from upstream's state_3000.pt on both backends with only length overrides, resume exactly
with their replay buffer, and name a bad QSM key in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from shared.settings.qsm import QSMConfig
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

QSM = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_qsm_diffusion_mlp.yaml") for env in ("hopper", "walker2d",
                                                                                         "halfcheetah")}
# replay_ratio sets how many minibatches an iteration runs: shortened like the number of iterations;
# a smaller critic keeps the TF compile short
SHORT = ["train.n_steps=5", "env.n_envs=2", "train.batch_size=8", "train.replay_ratio=1.6", "train.val_freq=2",
         "env.max_episode_steps=12", "model.critic.mlp_dims=[32,32]", "wandb=null"]


def _metrics(root) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_upstream_qsm_configs_read_as_qsm_with_their_values():
    for env, path in QSM.items():
        cfg = load_settings(path)
        assert isinstance(cfg, QSMConfig), env
        s = cfg.qsm
        assert (s.q_grad_coeff, s.critic_tau, s.scale_reward_factor, s.n_critic_warmup_itr, s.gamma) == (
            10.0, 0.005, 0.01, 5, 0.99)
        assert s.buffer_transitions == 25000 * 40 and s.minibatches == 500 * 40 // 1000 * 16
        assert cfg.critic.double_q and not cfg.critic.residual_tyle  # upstream's plain-MLP double critic


@pytest.mark.usefixtures("upstream_env")
def test_upstream_qsm_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", QSM["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_train_itr=1", "train.force_train=true", "train.n_critic_warmup_itr=0",
                     f"logdir={logdir}"]) == 0
        logs[backend] = _metrics(logdir)[0]  # one training iteration with actor steps (no evaluation)
    assert not logs["torch"]["eval"] and logs["torch"]["buffer_transitions"] == 10
    for key in ("critic_loss", "actor_loss"):  # float32 twins: rounding only
        np.testing.assert_allclose(logs["tf"][key], logs["torch"][key], rtol=1e-4, err_msg=key)


@pytest.mark.usefixtures("upstream_env")
def test_qsm_run_resumes_exactly_with_its_replay_buffer(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    # iteration 0 evaluates; 1 (critic warm-up), 2 and 3 train; the split run resumes at 3
    run = ["finetune", "--config", QSM["hopper"], "--backend", "torch", "--quiet", *SHORT, "train.save_model_freq=1",
           "train.val_freq=4", "train.n_critic_warmup_itr=2", "train.buffer_size=8"]
    assert main([*run, "train.n_train_itr=4", f"logdir={whole}"]) == 0
    assert main([*run, "train.n_train_itr=3", f"logdir={split}"]) == 0
    saved = load_checkpoint(str(split / "checkpoint" / "state_2.npz"))
    assert saved.meta["algorithm"] == "qsm" and saved.group("replay_buffer")["rewards"].shape == (16,)
    assert main([*run, "train.n_train_itr=4", f"logdir={split}"]) == 0
    assert "resumed from" in capsys.readouterr().err
    a, b = (load_checkpoint(str(d / "checkpoint" / "state_3.npz")) for d in (whole, split))
    assert a.group("replay_buffer")["rewards"].shape == (16,)  # buffer_size 8 policy steps x 2 envs, oldest dropped
    assert int(a.group("actor_optimizer")["step"]) == 2 * int(a.group("critic_optimizer")["step"]) // 3  # warm-up
    assert not np.array_equal(a.group("model")["critic.Q1.moduleList.0.linear_1.weight"],
                              a.group("model")["critic_target.Q1.moduleList.0.linear_1.weight"])
    for group in ("model", "actor_optimizer", "critic_optimizer", "replay_buffer"):
        for name, value in a.group(group).items():
            np.testing.assert_array_equal(value, b.group(group)[name], err_msg=f"{group}/{name}")


def test_a_bad_qsm_key_is_named_in_one_line(capsys):
    assert main(["finetune", "--config", QSM["walker2d"], "--backend", "torch", "train.critic_tau=1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.critic_tau" in err and "must be in [0, 1]" in err and "\n" not in err
    assert main(["finetune", "--config", QSM["walker2d"], "--backend", "torch", "model.critic.double_q=false"]) == 2
    assert "model.critic.double_q" in capsys.readouterr().err
