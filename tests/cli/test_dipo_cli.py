"""Upstream's DIPO configs (ft_dipo_diffusion_mlp.yaml of hopper, walker2d, halfcheetah; values unchanged)
read as DIPO, run on both backends with only length and size overrides, resume
exactly with their replay buffer (whose actions the action gradient rewrites), and refuse a single-Q
critic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from shared.settings.dipo import DIPOConfig
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

DIPO = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_dipo_diffusion_mlp.yaml") for env in ("hopper", "walker2d",
                                                                                           "halfcheetah")}
# replay_ratio sets how many minibatches an iteration runs; the warm-up ends after the first iteration. A fresh
# small policy (no base_policy_path) keeps the TF compile of a whole DIPO minibatch short.
SHORT = ["train.n_steps=6", "env.n_envs=2", "train.batch_size=8", "train.replay_ratio=2", "train.val_freq=5",
         "train.n_critic_warmup_itr=1", "train.action_gradient_steps=3", "model.critic.mlp_dims=[32,32,32]",
         "base_policy_path=null", "model.actor.mlp_dims=[32,32,32]", "denoising_steps=4",
         "env.max_episode_steps=16", "wandb=null"]


def _metrics(root) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_upstream_dipo_configs_read_as_dipo_with_their_values():
    for env, path in DIPO.items():
        cfg = load_settings(path)
        assert isinstance(cfg, DIPOConfig), env
        s = cfg.dipo
        assert (s.target_ema_rate, s.action_lr, s.action_gradient_steps, s.buffer_transitions) == (
            0.005, 1e-4, 10, 1000000)
        assert s.minibatches == 500 * 40 // 1000 * 64 and s.n_critic_warmup_itr == 5
        assert s.action_grad_norm == pytest.approx(cfg.action_dim * cfg.act_steps * 0.1)
        assert not cfg.critic.residual_tyle  # upstream's Q critics are plain MLPs


@pytest.mark.usefixtures("upstream_env")
def test_upstream_dipo_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", DIPO["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_critic_warmup_itr=0", "train.n_train_itr=1", "train.force_train=true",
                     f"logdir={logdir}"]) == 0
        logs[backend] = _metrics(logdir)[0]
    assert not logs["torch"]["eval"] and logs["torch"]["buffer_transitions"] == 12
    for key in ("critic_loss", "actor_loss"):  # float32 twins: rounding only
        np.testing.assert_allclose(logs["tf"][key], logs["torch"][key], rtol=1e-4, err_msg=key)


@pytest.mark.usefixtures("upstream_env")
def test_dipo_run_resumes_exactly_with_its_rewritten_replay_buffer(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run = ["finetune", "--config", DIPO["hopper"], "--backend", "torch", "--quiet", *SHORT,
           "train.save_model_freq=1", "train.force_train=true"]
    assert main([*run, "train.n_train_itr=3", f"logdir={whole}"]) == 0
    assert main([*run, "train.n_train_itr=2", f"logdir={split}"]) == 0
    saved = load_checkpoint(str(split / "checkpoint" / "state_1.npz"))
    assert saved.meta["algorithm"] == "dipo" and saved.group("replay_buffer")["rewards"].shape == (24,)
    assert {"actor_target.", "critic_target."} <= {k.split(".")[0] + "." for k in saved.group("model")}
    assert main([*run, "train.n_train_itr=3", f"logdir={split}"]) == 0
    assert "resumed from" in capsys.readouterr().err
    a, b = (load_checkpoint(str(d / "checkpoint" / "state_2.npz")) for d in (whole, split))
    for group in ("model", "actor_optimizer", "critic_optimizer", "replay_buffer"):
        for name, value in a.group(group).items():
            np.testing.assert_array_equal(value, b.group(group)[name], err_msg=f"{group}/{name}")


def test_a_single_q_critic_is_refused_with_one_line(capsys):
    assert main(["finetune", "--config", DIPO["walker2d"], "--backend", "torch", "model.critic.double_q=false",
                 "logdir=/tmp/dipo-refused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.critic.double_q" in err[0]
