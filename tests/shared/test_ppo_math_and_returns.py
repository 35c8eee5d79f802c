import numpy as np
import pytest

from shared.algorithms.ppo_math import clip_coefficients, denoising_discount
from shared.algorithms.returns import RunningRewardScaler, gae


def test_denoising_discount_weights_last_step_most():
    d = denoising_discount(4, 0.9)
    np.testing.assert_allclose(d, [0.9**3, 0.9**2, 0.9, 1.0])


def test_clip_coefficients_interpolate_exponentially():
    c = clip_coefficients(10, clip_ploss_coef=0.1, clip_ploss_coef_base=0.001, clip_ploss_coef_rate=3)
    assert c[0] == pytest.approx(0.001) and c[-1] == pytest.approx(0.1)
    assert np.all(np.diff(c) > 0)
    u = 4 / 9
    assert c[4] == pytest.approx(0.001 + 0.099 * (np.exp(3 * u) - 1) / (np.exp(3) - 1))
    np.testing.assert_array_equal(clip_coefficients(1, 0.2, 0.01, 3), [0.2])


def test_gae_matches_direct_sum_of_discounted_td_errors():
    rng = np.random.default_rng(0)
    T, N, gamma, lam = 7, 3, 0.97, 0.9
    r, v, nv = rng.standard_normal((T, N)), rng.standard_normal((T, N)), rng.standard_normal(N)
    term = np.zeros((T, N))
    term[3, 1] = 1
    adv, ret = gae(r, v, nv, term, gamma, lam)
    v_next = np.vstack([v[1:], nv[None]])
    delta = r + gamma * v_next * (1 - term) - v
    for n in range(N):
        for t in range(T):
            total, w = 0.0, 1.0
            for u in range(t, T):
                total += w * delta[u, n]
                if term[u, n]:
                    break
                w *= gamma * lam
            assert adv[t, n] == pytest.approx(total)
    np.testing.assert_allclose(ret, adv + v)


def test_running_reward_scaler_divides_by_std_of_discounted_returns():
    scaler = RunningRewardScaler(num_envs=2, gamma=0.5)
    r = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 2.0]])
    first = np.array([[1, 0, 0], [1, 0, 1]], dtype=float)
    out = scaler(r, first)
    rets = np.array([[1.0, 1.5, 1.75], [2.0, 1.0, 2.0]])
    # Chan update from (mean 0, var 1, count 1e-4) with the 6 returns
    x = rets.reshape(-1)
    count = 1e-4 + 6
    m2 = 1.0 * 1e-4 + x.var() * 6 + x.mean() ** 2 * 1e-4 * 6 / count
    np.testing.assert_allclose(out, r / np.sqrt(m2 / (count - 1) + 1e-8))
    np.testing.assert_allclose(scaler.ret, [1.75, 2.0])
    state = scaler.state()
    other = RunningRewardScaler(num_envs=2, gamma=0.5)
    other.load_state(state)
    np.testing.assert_allclose(other.transform(r), scaler.transform(r))
