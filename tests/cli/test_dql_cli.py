"""Upstream's DQL configs (ft_dql_diffusion_mlp.yaml of hopper, walker2d, halfcheetah; values unchanged)
read as DQL, run from upstream's state_3000.pt on both backends with only length overrides, resume
exactly with their replay buffer and target critic, and name a bad DQL key in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from shared.settings.dql import DQLConfig
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

DQL = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_dql_diffusion_mlp.yaml") for env in ("hopper", "walker2d",
                                                                                         "halfcheetah")}
# shortened: iterations, steps, envs, minibatches (batch_size, replay_ratio) and the chain's length (the
# policy's weights do not depend on it), so the TF graph of one update stays small
SHORT = ["train.n_steps=6", "env.n_envs=2", "train.batch_size=8", "train.replay_ratio=2", "denoising_steps=3",
         "env.max_episode_steps=12", "wandb=null"]


def _metrics(root) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_upstream_dql_configs_read_as_dql_with_their_values():
    for env, path in DQL.items():
        cfg = load_settings(path)
        assert isinstance(cfg, DQLConfig), env
        s = cfg.dql
        assert (s.eta, s.target_ema_rate, s.scale_reward_factor, s.buffer_transitions, s.gamma) == (
            1.0, 0.005, 0.01, 1000000, 0.99)
        assert s.minibatches == int(500 * 40 / 1000 * 16) and s.n_critic_warmup_itr == 5
        assert s.min_sampling_denoising_std == 0.1 and not s.final_action_clip  # upstream sets no final clip
        assert not cfg.critic.residual_tyle  # upstream's Q critics are plain MLPs


@pytest.mark.usefixtures("upstream_env")
def test_upstream_dql_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", DQL["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_train_itr=1", "train.force_train=true", "train.n_critic_warmup_itr=0",
                     f"logdir={logdir}"]) == 0
        logs[backend] = _metrics(logdir)[0]  # one training iteration, the actor stepping
    assert not logs["torch"]["eval"] and logs["torch"]["buffer_transitions"] == 12
    for key in ("critic_loss", "actor_loss", "target_q"):  # float32 twins: rounding only
        np.testing.assert_allclose(logs["tf"][key], logs["torch"][key], rtol=1e-4, err_msg=key)


@pytest.mark.usefixtures("upstream_env")
def test_dql_run_resumes_exactly_with_its_replay_buffer_and_target_critic(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run = ["finetune", "--config", DQL["hopper"], "--backend", "torch", "--quiet", *SHORT, "train.save_model_freq=1",
           "train.force_train=true", "train.n_critic_warmup_itr=1"]  # itr 0 warms the critic up, itr 1 trains both
    assert main([*run, "train.n_train_itr=2", f"logdir={whole}"]) == 0
    assert main([*run, "train.n_train_itr=1", f"logdir={split}"]) == 0
    saved = load_checkpoint(str(split / "checkpoint" / "state_0.npz"))
    assert saved.meta["algorithm"] == "dql" and saved.group("replay_buffer")["rewards"].shape == (12,)
    assert int(saved.group("actor_optimizer")["step"]) == 0  # warm-up: the critic only
    assert main([*run, "train.n_train_itr=2", f"logdir={split}"]) == 0
    assert "resumed from" in capsys.readouterr().err
    a, b = (load_checkpoint(str(d / "checkpoint" / "state_1.npz")) for d in (whole, split))
    assert a.group("replay_buffer")["rewards"].shape == (24,)  # two training iterations buffered
    assert int(a.group("actor_optimizer")["step"]) == 3  # int(6 * 2 / 8 * 2) minibatches of itr 1
    assert any(k.startswith("critic_target.") for k in a.group("model"))
    for group in ("model", "actor_optimizer", "critic_optimizer", "replay_buffer"):
        for name, value in a.group(group).items():
            np.testing.assert_array_equal(value, b.group(group)[name], err_msg=f"{group}/{name}")


def test_a_bad_dql_key_is_named_in_one_line(capsys, tmp_path):
    assert main(["finetune", "--config", DQL["walker2d"], "--backend", "torch", "--quiet", "base_policy_path=null",
                 "train.target_ema_rate=1.5", f"logdir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.target_ema_rate" in err and "[0, 1]" in err and len(err.splitlines()) == 1
