"""Upstream's AWR configs (ft_awr_diffusion_mlp.yaml of hopper, walker2d, halfcheetah; values unchanged)
read as AWR, run from upstream's state_3000.pt on both backends with only length overrides, resume
exactly with their replay buffer, and pass `dppo parity`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from shared.settings.awr import AWRConfig
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

AWR = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_awr_diffusion_mlp.yaml") for env in ("hopper", "walker2d",
                                                                                         "halfcheetah")}
# replay_ratio sets how many minibatches an iteration runs: shortened like the number of iterations
SHORT = ["train.n_steps=10", "env.n_envs=2", "train.batch_size=8", "train.replay_ratio=4", "train.val_freq=2",
         "env.max_episode_steps=16", "wandb=null"]


def _metrics(root) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_upstream_awr_configs_read_as_awr_with_their_values():
    for env, path in AWR.items():
        cfg = load_settings(path)
        assert isinstance(cfg, AWRConfig), env
        s = cfg.awr
        assert (s.beta, s.max_adv_weight, s.scale_reward_factor, s.buffer_size, s.critic_update_ratio) == (
            10.0, 100.0, 0.01, 5000, 4)
        assert s.actor_batches == 500 * 40 // 1000 * 64 and s.td_gamma == 0.99
        assert s.critic_loss_all_pairs and s.critic_rows_first_steps  # upstream's critic, as it runs


@pytest.mark.usefixtures("upstream_env")
def test_upstream_awr_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", AWR["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_train_itr=1", "train.force_train=true", f"logdir={logdir}"]) == 0
        logs[backend] = _metrics(logdir)[0]  # one training iteration (no evaluation: one TF compile less)
    assert not logs["torch"]["eval"] and logs["torch"]["buffer_steps"] == 10
    for key in ("critic_loss", "actor_loss", "mean_weight", "mean_advantage"):  # float32 twins: rounding only
        np.testing.assert_allclose(logs["tf"][key], logs["torch"][key], rtol=1e-4, err_msg=key)


@pytest.mark.usefixtures("upstream_env")
def test_awr_run_resumes_exactly_with_its_replay_buffer(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run = ["finetune", "--config", AWR["hopper"], "--backend", "torch", "--quiet", *SHORT, "train.save_model_freq=1",
           "train.val_freq=3"]
    assert main([*run, "train.n_train_itr=3", f"logdir={whole}"]) == 0
    assert main([*run, "train.n_train_itr=2", f"logdir={split}"]) == 0
    saved = load_checkpoint(str(split / "checkpoint" / "state_1.npz"))
    assert saved.meta["algorithm"] == "awr" and saved.group("replay_buffer")["rewards"].shape == (10, 2)
    assert main([*run, "train.n_train_itr=3", f"logdir={split}"]) == 0
    assert "resumed from" in capsys.readouterr().err
    a, b = (load_checkpoint(str(d / "checkpoint" / "state_2.npz")) for d in (whole, split))
    assert a.group("replay_buffer")["rewards"].shape == (20, 2)  # two training iterations buffered
    for group in ("model", "actor_optimizer", "critic_optimizer", "replay_buffer"):
        for name, value in a.group(group).items():
            np.testing.assert_array_equal(value, b.group(group)[name], err_msg=f"{group}/{name}")


def test_dppo_parity_covers_an_upstream_awr_config():
    """Upstream's settings (all-pairs critic loss, critic rows among the first buffer steps): sampled chunks,
    values, both losses with every gradient and three critic-then-actor updates, end to end and forced."""
    assert main(["parity", "--config", AWR["halfcheetah"], "--batch", "3", "model.actor.mlp_dims=[8,8,8]",
                 "model.critic.mlp_dims=[8,8,8]", "denoising_steps=3", "train.actor_lr_scheduler.first_cycle_steps=20",
                 "train.critic_lr_scheduler.first_cycle_steps=20"]) == 0
