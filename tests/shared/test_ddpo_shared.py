"""The numpy side of DDPO (shared/ddpo/): data, chain tables, rewards, per-prompt normalization, RWR weights."""

from __future__ import annotations

import numpy as np
import pytest

from shared.ddpo import digits
from shared.ddpo.chain import ddpo_chain
from shared.ddpo.normalize import PromptStats, rwr_weights, sparse_weights
from shared.ddpo.rewards import REWARDS, alignment, image_reward, jpeg_size_kb, prompt_accuracy


def test_digits_are_scaled_to_minus_one_one_with_ten_classes():
    x, y = digits.digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))
    assert digits.one_hot(np.array([3, digits.NULL_CLASS])).tolist()[1][-1] == 1.0
    np.testing.assert_array_equal(digits.to_uint8(x[:2]).reshape(2, 64),
                                  np.round((x[:2].astype(np.float64) + 1) * 127.5).astype(np.uint8))


def test_chain_samples_and_scores_with_the_same_floored_std_and_eta_one_sigma():
    c = ddpo_chain(1000, 50, 1.0, 0.01)
    np.testing.assert_allclose(c.plan.std, c.scoring.logprob_std)
    assert c.plan.timesteps[0] == 980 and c.plan.timesteps[-1] == 0 and c.sampling_steps == 50
    assert c.plan.std[-1] == 0.01  # a_prev = 1 at the last DDIM step: sigma 0, floored
    a, ap = c.plan.alpha[0], c.plan.alpha_prev[0]
    np.testing.assert_allclose(c.plan.std[0], np.sqrt((1 - ap) / (1 - a) * (1 - a / ap)))
    assert np.all(np.diff(c.plan.std[:-2]) < 0)  # noisiest first


def test_jpeg_rewards_prefer_flat_images_for_compressibility_and_noise_for_incompressibility():
    rng = np.random.default_rng(0)
    flat, noise = np.zeros((1, 64)), rng.uniform(-1, 1, (1, 64))
    images = np.concatenate([flat, noise])
    size = jpeg_size_kb(images)
    assert size[0] < size[1]
    labels = np.zeros(2, np.int64)
    np.testing.assert_array_equal(REWARDS["compressibility"](images, labels), -size)
    np.testing.assert_array_equal(REWARDS["incompressibility"](images, labels), size)


def test_alignment_is_the_classifiers_log_probability_of_the_prompt():
    x, y = digits.digits()
    right = alignment(x[:50], y[:50])
    wrong = alignment(x[:50], (y[:50] + 1) % 10)
    assert np.all(right <= 0) and right.mean() > wrong.mean() + 3
    assert prompt_accuracy(x[:50], y[:50]).mean() > 0.95


def test_any_numpy_callable_on_images_is_a_reward():
    r = image_reward(lambda im: im.mean(axis=1))
    images = np.arange(128, dtype=np.float64).reshape(2, 64)
    np.testing.assert_array_equal(r(images, np.zeros(2, np.int64)), images.mean(axis=1))


def test_per_prompt_normalization_uses_the_batch_until_a_prompt_has_min_count_then_its_own_buffer():
    stats = PromptStats(10, buffer_size=4, min_count=3)
    r, p = np.array([1.0, 2.0, 3.0, 10.0]), np.array([0, 0, 1, 1])
    np.testing.assert_allclose(stats.normalize(r, p), (r - r.mean()) / (r.std() + 1e-6))
    r2, p2 = np.array([3.0, 20.0]), np.array([0, 1])
    out = stats.normalize(r2, p2)
    buf0 = np.array([1.0, 2.0, 3.0])  # prompt 0 now has 3 >= min_count: its own buffer
    assert out[0] == pytest.approx((3.0 - buf0.mean()) / (buf0.std() + 1e-6))
    buf1 = np.array([3.0, 10.0, 20.0])
    assert out[1] == pytest.approx((20.0 - buf1.mean()) / (buf1.std() + 1e-6))
    stats.normalize(np.array([5.0, 6.0]), np.array([0, 0]))
    assert stats.buffers[0] == [2.0, 3.0, 5.0, 6.0]  # only the last buffer_size are kept
    again = PromptStats(10, 4, 3)
    again.load_state(stats.state())
    assert again.buffers == stats.buffers


def test_rwr_weights_sum_to_one_per_prompt_and_sparse_weights_threshold():
    adv, p = np.array([0.0, 1.0, -1.0, 2.0, 0.5]), np.array([0, 0, 1, 1, 2])
    w = rwr_weights(adv, p, beta=1.0)
    for c in (0, 1, 2):
        assert w[p == c].sum() == pytest.approx(1.0)
    assert w[1] / w[0] == pytest.approx(np.e)
    np.testing.assert_array_equal(sparse_weights(adv, 0.5), [0, 1, 0, 1, 1])
