"""IDQL's candidate choice (shared/algorithms/idql.py): the argmax, or upstream's expectile-weighted categorical draw
made from the driver's normals (Phi(z) as the uniform of an inverse-CDF lookup)."""

from __future__ import annotations

import math

import numpy as np

from shared.algorithms.idql import candidate_weights, chain_noise, choice_uniforms, choose_candidates, noise_shape


def test_noise_holds_every_candidate_chain_and_one_choice_slice():
    shape = noise_shape(num_sampling_steps=5, num_sample=4, n=3, horizon_steps=2, action_dim=1)
    assert shape == (7, 12, 2, 1)
    noise = np.random.default_rng(0).standard_normal(shape)
    assert chain_noise(noise).shape == (6, 12, 2, 1)
    u = choice_uniforms(noise, 3)
    expected = [0.5 * (1 + math.erf(z / math.sqrt(2))) for z in noise[-1, :3, 0, 0]]
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-15)


def test_argmax_takes_the_best_scored_candidate_per_observation():
    q = np.array([[0.1, 3.0], [2.0, -1.0], [2.0, 0.0]])  # (S=3, B=2); ties go to the first
    assert choose_candidates(q, None, None, 0.7).tolist() == [1, 0]


def test_weights_favour_candidates_whose_q_exceeds_v():
    q, v = np.array([[1.0], [0.0], [0.5]]), np.full((3, 1), 0.4)
    np.testing.assert_allclose(candidate_weights(q, v, 0.7)[:, 0], np.array([0.7, 0.3, 0.7]) / 1.7)


def test_the_draw_inverts_the_cumulative_weights():
    q, v = np.array([[1.0] * 4, [0.0] * 4]), np.zeros((2, 4))  # weights 0.7, 0.3 in every column
    u = np.array([0.0, 0.6999, 0.7001, 0.99999])
    assert choose_candidates(q, v, u, 0.7).tolist() == [0, 0, 1, 1]


def test_draws_from_normals_follow_upstreams_multinomial_probabilities():
    rng = np.random.default_rng(1)
    q = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    picks = [int(choose_candidates(q, np.zeros((4, 1)), choice_uniforms(rng.standard_normal((1, 1, 1, 1)), 1),
                                   0.7)[0]) for _ in range(4000)]
    freq = np.bincount(picks, minlength=4) / len(picks)
    np.testing.assert_allclose(freq, [0.35, 0.15, 0.35, 0.15], atol=0.03)
