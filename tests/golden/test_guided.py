"""Reward-guided diffusion in both twins against the author's own code (Freeky7819/diffusion-policy-engine,
dpe_main.py at the pinned commit; fixtures by scripts/golden/dpe_fixtures.py): the cosine schedule on t / T,
one training step's body (q_sample, the denoiser, the reconstruction of p0, the squashed reward, the loss,
its gradient with the reward's gradient cut as the author's code cuts it or not, clipped AdamW), DDPM
sampling with and without MPPI under the same injected noise, and the reward itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dppo.training.guided import make_agent
from shared.diffusion.schedule import cosine_beta_schedule, ddpm_tables
from shared.guided import rosenbrock
from shared.guided.chain import BETA_MIN
from shared.guided.reward_weight import reward_weight
from shared.settings.guided import load_guided_settings
from tests.golden.golden import Case, assert_gradient_matches_upstream, assert_matches_upstream

BACKENDS = ["torch", "tf"]
CONFIG = "configs/reward_guided/rosenbrock.yaml"


def _config(meta: dict, **sample: object):  # noqa: ANN202
    """The shipped config shrunk to the recorded case (T, widths, learning rate, MPPI)."""
    over = [f"model.denoising_steps={meta['T']}"]
    if "hidden_dim" in meta:
        over += [f"model.hidden_dim={meta['hidden_dim']}", f"model.time_dim={meta['time_dim']}",
                 f"train.learning_rate={meta['lr']}", f"train.weight_decay={meta['weight_decay']}",
                 f"train.max_grad_norm={meta['max_grad_norm']}",
                 f"train.reward_gradient={str(meta['reward_gradient']).lower()}"]
    over += [f"sample.{k}={v}" for k, v in sample.items()]
    return load_guided_settings(CONFIG, over)


def test_schedule_is_the_authors_floored_cosine() -> None:
    case = Case("dpe", "schedule")
    for n in (200, 12):
        tables = ddpm_tables(n, cosine_beta_schedule(n, beta_min=BETA_MIN))
        assert_matches_upstream(tables.betas, case, f"{n}/betas")
        assert_matches_upstream(tables.alphas_cumprod, case, f"{n}/alphas_cumprod")


def test_reward_is_the_authors_squashed_shifted_rosenbrock() -> None:
    case = Case("dpe", "reward")
    x, p = case.inp["x"], case.inp["p"]
    assert_matches_upstream(rosenbrock.reward(x, p, np), case, "reward", "numpy float32")


def test_reward_weight_ramp_is_the_one_in_the_authors_log() -> None:
    # lambda_R column of the author's log.csv (12 epochs, lambda_R 0.02), the run behind the published table
    logged = [0.0, 0.0, 0.0, 0.005, 0.01, 0.015, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02]
    assert [reward_weight(e, 12, 0.02) for e in range(12)] == pytest.approx(logged, abs=1e-12)


def _step_outputs(backend: str, case: Case) -> dict[str, np.ndarray]:
    """The training step's intermediate values and gradient (before the step) and the parameters after it."""
    cfg = _config(case.meta)
    inp, lam = case.inp, case.meta["reward_weight"]
    agent = make_agent(cfg, backend, case.params())
    x, p0, t, noise = inp["x"], inp["p0"], inp["t"], inp["noise"]
    if backend == "torch":
        import torch

        out = agent.losses(torch.from_numpy(x), torch.from_numpy(p0), torch.from_numpy(t), torch.from_numpy(noise),
                           lam)
        out["loss"].backward()
        grads = {f"grad/{k}": v.grad.numpy().copy() for k, v in agent.named}
        values = {k: v.detach().numpy() for k, v in out.items()}
        with torch.no_grad():
            rows = agent.denoise(*(torch.from_numpy(a) for a in (x, p0, t, noise)))
            rows = [*rows, agent.reward(torch.from_numpy(x), rows[2])]
        values.update({f"rows/{k}": v.numpy() for k, v in zip(("p_t", "eps_hat", "p0_hat", "reward"), rows)})
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = agent.losses(tf.constant(x), tf.constant(p0), tf.constant(t), tf.constant(noise), tf.constant(lam))
        grads = {f"grad/{k}": g.numpy() for (k, _), g in zip(agent.named, tape.gradient(out["loss"], agent.variables))}
        values = {k: v.numpy() for k, v in out.items()}
        rows = agent.denoise(*(tf.constant(a) for a in (x, p0, t, noise)))
        rows = [*rows, agent.reward(tf.constant(x), rows[2])]
        values.update({f"rows/{k}": v.numpy() for k, v in zip(("p_t", "eps_hat", "p0_hat", "reward"), rows)})
    fresh = make_agent(cfg, backend, case.params())
    fresh.train_step(x, p0, t, noise, lam)
    after = {f"after/{k}": v for k, v in fresh.state_groups()["model"].items()}
    return {**values, **grads, **after}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["train_step", "train_step_reward_gradient"])
def test_training_step_loss_gradient_and_update_match_the_authors(name: str, backend: str) -> None:
    case = Case("dpe", name)
    ours = _step_outputs(backend, case)
    for key in ("loss", "denoise_loss"):
        assert_matches_upstream(ours[key], case, key, backend)
    for key in ("p_t", "eps_hat", "p0_hat", "reward"):  # per row: the reward is scored on the reconstruction
        assert_matches_upstream(ours[f"rows/{key}"], case, key, backend)
    assert_gradient_matches_upstream(ours, case, "grad/", backend)
    assert_gradient_matches_upstream(ours, case, "after/", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["sample_mppi", "sample_plain"])
def test_sampling_with_and_without_mppi_matches_the_authors(name: str, backend: str) -> None:
    case = Case("dpe", name)
    m = case.meta
    mppi = m["mppi_candidates"] > 0
    cfg = _config(m, mppi_candidates=max(m["mppi_candidates"], 1), mppi_temperature=m["mppi_temperature"],
                  mppi_jitter=m["mppi_jitter"], mppi=str(mppi).lower())
    agent = make_agent(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hidden_dim=32, time_dim=8)),
                       backend, case.params())
    inp = case.inp
    p = agent.sample(inp["x"], inp["p_init"], inp["step_noise"], inp["jitter"] if mppi else None)
    assert_matches_upstream(p, case, "p", backend)
    assert_matches_upstream(agent.reward_of(inp["x"], p), case, "reward", backend)


# ------------------------------------------------ the gate is not vacuous for reward-guided diffusion


@pytest.mark.deliberate_drift
@pytest.mark.parametrize("backend", BACKENDS)
def test_posterior_variance_instead_of_beta_fails_the_sampling_golden(backend: str, monkeypatch) -> None:
    """DPPO's DDPM samples with the posterior variance; the engine with beta_t."""
    import shared.guided.chain
    from tests.golden.golden import patch_everywhere

    test_sampling_with_and_without_mppi_matches_the_authors("sample_plain", backend)
    original = shared.guided.chain.guided_chain

    def drifted(n: int) -> shared.guided.chain.GuidedChain:
        chain = original(n)
        posterior = np.exp(0.5 * chain.tables.posterior_log_variance_clipped[chain.plan.timesteps])
        std = np.where(chain.plan.timesteps == 0, 0.0, posterior)
        return dataclasses.replace(chain, plan=dataclasses.replace(chain.plan, std=std))

    patch_everywhere(monkeypatch, shared.guided.chain, "guided_chain", drifted)
    with pytest.raises(AssertionError, match=rf"dpe/sample_plain/p {backend}: .*exceeds the budget"):
        test_sampling_with_and_without_mppi_matches_the_authors("sample_plain", backend)


@pytest.mark.deliberate_drift
@pytest.mark.parametrize("backend", BACKENDS)
def test_reward_gradient_reaching_the_denoiser_fails_the_authors_detached_step(backend: str, monkeypatch) -> None:
    case = Case("dpe", "train_step")
    ours = _step_outputs(backend, case)
    assert_gradient_matches_upstream(ours, case, "grad/", backend)
    monkeypatch.setitem(case.meta, "reward_gradient", True)
    with pytest.raises(AssertionError, match=rf"dpe/train_step/grad/\* {backend}: .*exceeds the budget"):
        assert_gradient_matches_upstream(_step_outputs(backend, case), case, "grad/", backend)


@pytest.mark.deliberate_drift
@pytest.mark.parametrize("backend", BACKENDS)
def test_mppi_weights_without_the_temperature_fail_the_sampling_golden(backend: str, monkeypatch) -> None:
    import importlib

    core = importlib.import_module(f"core_{backend}.algorithms.reward_guided")
    original = core.mppi_mean
    test_sampling_with_and_without_mppi_matches_the_authors("sample_mppi", backend)
    monkeypatch.setattr(core, "mppi_mean", lambda x, mean, jitter, reward, temperature:
                        original(x, mean, jitter, reward, 1.0))
    with pytest.raises(AssertionError, match=rf"dpe/sample_mppi/p {backend}: .*exceeds the budget"):
        test_sampling_with_and_without_mppi_matches_the_authors("sample_mppi", backend)
