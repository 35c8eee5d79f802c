"""Upstream's RWR configs (ft_rwr_diffusion_mlp.yaml of hopper, walker2d, halfcheetah; values unchanged)
read as RWR, run from upstream's state_3000.pt on both backends with only length overrides, resume
exactly, evaluate, and pass `dppo parity`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from shared.settings.rwr import RWRConfig
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

RWR = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_rwr_diffusion_mlp.yaml") for env in ("hopper", "walker2d",
                                                                                         "halfcheetah")}
SHORT = ["train.n_steps=12", "env.n_envs=2", "train.batch_size=8", "train.update_epochs=2", "train.val_freq=2",
         "env.max_episode_steps=16", "wandb=null"]


def _metrics(root) -> list[dict]:
    return [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]


def test_upstream_rwr_configs_read_as_rwr_with_their_values():
    for env, path in RWR.items():
        cfg = load_settings(path)
        assert isinstance(cfg, RWRConfig), env
        s = cfg.rwr
        assert (s.beta, s.max_reward_weight, s.batch_size, s.update_epochs, s.min_sampling_denoising_std) == (
            10.0, 100.0, 1000, 16, 0.1)
        assert cfg.diffusion.denoising_steps == 20 and cfg.diffusion.randn_clip_value == 3.0
        assert not cfg.env.reset_at_iteration


@pytest.mark.usefixtures("upstream_env")
def test_upstream_rwr_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", RWR["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_train_itr=1", "train.force_train=true", f"logdir={logdir}"]) == 0
        logs[backend] = _metrics(logdir)  # one training iteration (no evaluation: one TF compile less)
    train = {b: m[0] for b, m in logs.items()}
    assert not train["torch"]["eval"] and train["torch"]["num_rwr_rows"] > 0
    assert train["torch"]["num_rwr_rows"] == train["tf"]["num_rwr_rows"]
    # float32 twins over a whole iteration (rollout, weights, 2 epochs of AdamW): rounding only
    np.testing.assert_allclose(train["tf"]["loss"], train["torch"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(train["tf"]["mean_weight"], train["torch"]["mean_weight"], rtol=1e-4)


@pytest.mark.usefixtures("upstream_env")
def test_rwr_run_resumes_exactly_and_its_checkpoint_evaluates(tmp_path, capsys):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run = ["finetune", "--config", RWR["hopper"], "--backend", "torch", "--quiet", *SHORT, "train.save_model_freq=1"]
    assert main([*run, "train.n_train_itr=3", f"logdir={whole}"]) == 0
    assert main([*run, "train.n_train_itr=2", f"logdir={split}"]) == 0
    assert main([*run, "train.n_train_itr=3", f"logdir={split}"]) == 0
    assert "resumed from" in capsys.readouterr().err
    a, b = (load_checkpoint(str(d / "checkpoint" / "state_2.npz")) for d in (whole, split))
    assert a.meta["algorithm"] == "rwr"
    for group in ("model", "optimizer"):
        for name, value in a.group(group).items():
            np.testing.assert_array_equal(value, b.group(group)[name], err_msg=f"{group}/{name}")
    assert _metrics(whole) == [{**m, "seconds": w["seconds"]} for m, w in zip(_metrics(split), _metrics(whole))]
    # a DPPO config cannot resume from it; the RWR checkpoint evaluates as a policy
    ppo = str(UPSTREAM / "finetune/hopper-v2/ft_ppo_diffusion_mlp.yaml")
    assert main(["finetune", "--config", ppo, "--backend", "torch", "--quiet", f"logdir={split}", "wandb=null"]) == 2
    assert "is a RWR checkpoint" in capsys.readouterr().err
    assert main(["eval", "--config", RWR["hopper"], "--backend", "torch", "--episodes", "2",
                 f"base_policy_path={split / 'checkpoint' / 'state_2.npz'}", "env.max_episode_steps=10"]) == 0


def test_dppo_parity_covers_an_upstream_rwr_config():
    """The upstream configuration (epsilon prediction, no gradient clipping): sampled chunks, the weighted
    loss with every gradient and three AdamW updates, end to end and teacher-forced."""
    assert main(["parity", "--config", RWR["walker2d"], "--batch", "3", "model.network.mlp_dims=[8,8,8]",
                 "denoising_steps=3", "train.lr_scheduler.first_cycle_steps=20"]) == 0
