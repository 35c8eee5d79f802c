"""Upstream's exact-likelihood DPPO configs (ft_ppo_exact_diffusion_mlp.yaml of hopper and halfcheetah, the
two upstream ships; values unchanged) read with their values, run from upstream's state_3000.pt on both
backends with only length overrides, and refuse what they cannot run with one message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.checkpoint import load_checkpoint
from shared.settings import load_settings
from tests.cli.test_upstream_configs import UPSTREAM, upstream_env  # noqa: F401  (fixture)

EXACT = {env: str(UPSTREAM / f"finetune/{env}-v2/ft_ppo_exact_diffusion_mlp.yaml") for env in ("hopper",
                                                                                                 "halfcheetah")}
SHORT = ["train.n_steps=2", "env.n_envs=2", "train.batch_size=4", "train.update_epochs=1", "denoising_steps=5",
         "ft_denoising_steps=2", "model.sde_step_size=0.2",
         "env.max_episode_steps=16", "wandb=null"]


def test_upstream_exact_configs_read_with_their_values():
    for env, path in EXACT.items():
        cfg = load_settings(path)
        assert cfg.is_exact, env
        ex = cfg.model.likelihood()
        assert (ex.step_size, ex.eps, ex.min_beta, ex.num_epsilon, ex.hutchinson_type, ex.probability_flow) == (
            0.05, 1e-4, 1e-10, 2, "Rademacher", True)
        plan = ex.plan()  # 20 Euler steps at DDPM timesteps 0..19; actor_ft where k <= 10 (upstream's test)
        assert list(plan.timesteps) == list(range(20)) and plan.use_ft.sum() == 11
        assert (cfg.ppo.clip_ploss_coef, cfg.ppo.target_kl, cfg.model.rtol, cfg.model.atol) == (0.01, 1.0, 1e-4, 1e-4)


@pytest.mark.usefixtures("upstream_env")
def test_upstream_exact_config_runs_on_both_backends_with_the_same_numbers(tmp_path):
    logs = {}
    for backend in ("torch", "tf"):
        logdir = tmp_path / backend
        assert main(["finetune", "--config", EXACT["hopper"], "--backend", backend, "--quiet", *SHORT,
                     "train.n_train_itr=1", "train.force_train=true", f"logdir={logdir}"]) == 0
        logs[backend] = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    train = {b: m[0] for b, m in logs.items()}
    assert not train["torch"]["eval"]
    for key in ("pg_loss", "v_loss", "approx_kl"):  # float32 twins over a rollout, its scoring and an update
        np.testing.assert_allclose(train["tf"][key], train["torch"][key], rtol=1e-3, atol=1e-7, err_msg=key)
    ckpt = load_checkpoint(str(tmp_path / "torch" / "checkpoint" / "state_0.npz"))
    assert ckpt.meta["algorithm"] == "ppo_exact"


@pytest.mark.parametrize(("override", "message"), [
    ("model.sde_method=dopri5", "config key 'model.sde_method' must be one of euler"),
    ("model.gamma_denoising=0.99", "model.gamma_denoising' is a DPPO key"),
    ("model.sde.N=10", "config key 'model.sde.N' must equal denoising_steps=20"),
    ("model.sde_step_size=0.03", "config key 'model.sde_step_size' (0.03) does not fit the schedule"),
    ("train.use_bc_loss=true", "train.use_bc_loss: upstream's exact-likelihood loss has no BC term"),
])
def test_exact_config_refuses_what_it_cannot_run_in_one_line(override, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DPPO_LOG_DIR", str(tmp_path))
    assert main(["parity", "--config", EXACT["hopper"], override]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
