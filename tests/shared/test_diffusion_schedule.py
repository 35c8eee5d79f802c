import numpy as np
import pytest

from shared.diffusion.sampling_plan import sampling_plan
from shared.diffusion.schedule import cosine_beta_schedule, ddim_tables, ddpm_tables, sinusoidal_frequencies


def test_cosine_betas_match_closed_form_and_are_clipped():
    k, s = 20, 0.008
    # upstream samples the cosine on linspace(0, K+1, K+1)/(K+1), not arange/K
    grid = np.linspace(0, k + 1, k + 1) / (k + 1)
    f = np.cos((grid + s) / (1 + s) * np.pi / 2) ** 2
    expected = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    np.testing.assert_allclose(cosine_beta_schedule(k), expected, rtol=1e-12)
    assert cosine_beta_schedule(5).max() <= 0.999
    assert cosine_beta_schedule(1000)[-1] == pytest.approx(0.999)


def test_ddpm_tables_are_consistent():
    t = ddpm_tables(20)
    np.testing.assert_allclose(t.alphas_cumprod, np.cumprod(1 - t.betas))
    assert t.alphas_cumprod_prev[0] == 1.0
    np.testing.assert_allclose(t.alphas_cumprod_prev[1:], t.alphas_cumprod[:-1])
    np.testing.assert_allclose(t.sqrt_alphas_cumprod**2 + t.sqrt_one_minus_alphas_cumprod**2, 1.0)
    # posterior mean reproduces x0 exactly when x_t = sqrt(abar) x0 (no noise)
    x0 = 0.37
    xt = t.sqrt_alphas_cumprod * x0
    mu = t.posterior_mean_coef_x0 * x0 + t.posterior_mean_coef_xt * xt
    np.testing.assert_allclose(mu, np.sqrt(t.alphas_cumprod_prev) * x0, rtol=1e-10)
    assert t.posterior_variance[0] == 0.0
    assert t.posterior_log_variance_clipped[0] == pytest.approx(np.log(1e-20))


def test_ddim_uniform_leading_timesteps_flipped():
    d = ddim_tables(20, 5, eta=0.0)
    np.testing.assert_array_equal(d.timesteps, [16, 12, 8, 4, 0])
    abar = ddpm_tables(20).alphas_cumprod
    np.testing.assert_allclose(d.alphas, abar[[16, 12, 8, 4, 0]])
    np.testing.assert_allclose(d.alphas_prev, [abar[12], abar[8], abar[4], abar[0], 1.0])
    np.testing.assert_array_equal(d.sigmas, 0.0)
    sigmas = ddim_tables(20, 5, eta=1.0).sigmas
    assert (sigmas[:-1] > 0).all() and sigmas[-1] == 0.0  # the last step lands on alpha_prev = 1
    with pytest.raises(ValueError, match="ddim_steps"):
        ddim_tables(20, 21)


def test_sinusoidal_frequencies():
    f = sinusoidal_frequencies(16)
    assert f.shape == (8,)
    assert f[0] == 1.0
    assert f[-1] == pytest.approx(1e-4)


@pytest.mark.parametrize("use_ddim", [False, True])
def test_sampling_plan_recovers_x0_when_network_is_exact(use_ddim):
    """An oracle network (the epsilon of the current x_t) walks the mean chain back to x0."""
    k = 20
    plan = sampling_plan(k, use_ddim, 5 if use_ddim else None, deterministic=True)
    abar = ddpm_tables(k).alphas_cumprod
    x0, eps = 0.42, -1.3
    x = np.sqrt(abar[plan.timesteps[0]]) * x0 + np.sqrt(1 - abar[plan.timesteps[0]]) * eps
    for i in range(plan.num_steps):
        t = plan.timesteps[i]
        eps_t = (x - np.sqrt(abar[t]) * x0) / np.sqrt(1 - abar[t])
        if use_ddim:
            assert eps_t == pytest.approx(eps, abs=1e-9)  # DDIM keeps the same noise direction
        x0_hat = plan.recon_x[i] * x - plan.recon_eps[i] * eps_t
        assert x0_hat == pytest.approx(x0, abs=1e-9)
        x = plan.mean_x0[i] * x0_hat + plan.mean_xt[i] * x
        if use_ddim and i + 1 < plan.num_steps:
            t_next = plan.timesteps[i + 1]
            assert x == pytest.approx(np.sqrt(abar[t_next]) * x0 + np.sqrt(1 - abar[t_next]) * eps, abs=1e-9)
    assert x == pytest.approx(x0, abs=1e-9)


def test_sampling_plan_std_floors_follow_upstream():
    det = sampling_plan(20, deterministic=True)
    assert det.std[-1] == 0.0 and det.timesteps[-1] == 0
    assert det.std[:-1].min() >= 1e-3
    sto = sampling_plan(20, deterministic=False, min_sampling_std=0.1)
    assert sto.std.min() >= 0.1 and sto.std[-1] == 0.1
    ddim_det = sampling_plan(20, True, 10, deterministic=True)
    np.testing.assert_array_equal(ddim_det.std, 0.0)
    np.testing.assert_array_equal(sampling_plan(20, True, 10, deterministic=False, min_sampling_std=0.1).std, 0.1)


def test_deterministic_ddim_plan_uses_eta_zero_whatever_eta_is():
    """Upstream: deterministic DDIM sampling sets eta = 0, so the mean's direction term has no sigma either."""
    zero = sampling_plan(20, True, 5, ddim_eta=0.0, deterministic=True)
    one = sampling_plan(20, True, 5, ddim_eta=1.0, deterministic=True)
    for name in ("recon_x", "recon_eps", "mean_x0", "mean_xt", "std"):
        np.testing.assert_array_equal(getattr(one, name), getattr(zero, name))
    stochastic = sampling_plan(20, True, 5, ddim_eta=1.0, deterministic=False)
    assert not np.allclose(stochastic.mean_x0, zero.mean_x0)  # eta still shapes the stochastic mean
    np.testing.assert_allclose(stochastic.sigma_unit, ddim_tables(20, 5, 1.0).sigmas)
