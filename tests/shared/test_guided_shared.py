"""The reward-guided engine's numpy pieces: the benchmark's optimum, the chain's step against the engine's
own formula, the reward weight's ramp and the keyed draws the twins share."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shared.guided import rosenbrock
from shared.guided.chain import guided_chain
from shared.guided.reward_weight import reward_weight

contexts = st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=8).map(np.array)


@given(x=contexts, shift=st.tuples(st.floats(-1, 1), st.floats(-1, 1)).filter(lambda s: max(map(abs, s)) > 1e-3))
def test_the_optimum_has_reward_zero_and_every_other_p_less(x: np.ndarray, shift: tuple[float, float]) -> None:
    best = rosenbrock.optimum(x)
    assert np.allclose(rosenbrock.reward(x, best, np), 0.0, atol=1e-12)
    assert np.all(rosenbrock.cost(x, best + np.array(shift), np) > 0)


def test_the_chain_step_is_the_engines_mean_and_beta_noise() -> None:
    chain = guided_chain(200)
    tb, plan = chain.tables, chain.plan
    rng = np.random.default_rng(0)
    p, eps = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    for i, t in enumerate(plan.timesteps):
        engine = (p - tb.betas[t] / np.sqrt(1 - tb.alphas_cumprod[t]) * eps) / np.sqrt(tb.alphas[t])
        ours = plan.mean_x0[i] * (plan.recon_x[i] * p - plan.recon_eps[i] * eps) + plan.mean_xt[i] * p
        np.testing.assert_allclose(ours, engine, rtol=1e-9, atol=1e-9 * np.abs(engine).max())
        assert plan.std[i] == (np.sqrt(tb.betas[t]) if t > 0 else 0.0)
    np.testing.assert_array_equal(chain.time_input, np.arange(200) / 200)
    assert tb.betas.min() >= 1e-5 and tb.betas.max() <= 0.999


@given(epochs=st.integers(1, 60), lam=st.floats(0, 1), warm=st.floats(0, 1), ramp=st.floats(0, 1))
def test_the_reward_weight_is_zero_in_the_warm_up_then_ramps_to_its_maximum(epochs, lam, warm, ramp) -> None:
    w = [reward_weight(e, epochs, lam, warm, ramp) for e in range(epochs)]
    warmup = max(1, int(epochs * warm))
    assert all(v == 0.0 for v in w[:warmup])
    assert all(a <= b + 1e-15 for a, b in zip(w, w[1:])) and max(w, default=0.0) <= lam
    if warmup + max(1, int(epochs * ramp)) < epochs:
        assert w[-1] == lam


def test_the_data_are_noisy_optima_and_every_draw_is_keyed_by_seed() -> None:
    x, p = rosenbrock.dataset(4096, 3)
    assert x.dtype == p.dtype == np.float32 and x.shape == p.shape == (4096, 2)
    assert abs(np.std(p - rosenbrock.optimum(x.astype(np.float64))) - 0.05) < 0.003
    np.testing.assert_array_equal(rosenbrock.dataset(16, 3)[0], rosenbrock.dataset(16, 3)[0])
    assert not np.array_equal(rosenbrock.validation_contexts(3, 1, 8), rosenbrock.validation_contexts(3, 2, 8))
