"""AWR's replay buffer, minibatch rows and advantage weights (shared/algorithms/awr.py)."""

from __future__ import annotations

import numpy as np

from shared.algorithms.awr import ReplayBuffer, advantage_weights, minibatch_rows


def _steps(t0: int, T: int, N: int = 2) -> tuple[np.ndarray, ...]:
    ids = np.arange(t0, t0 + T, dtype=np.float32)[:, None].repeat(N, 1)
    return ids[..., None, None], ids[..., None, None].repeat(3, -1), ids.astype(np.float64), ids % 2 == 1


def test_buffer_keeps_the_last_capacity_steps_oldest_first_and_round_trips_its_state():
    buf = ReplayBuffer(5)
    assert len(buf) == 0 and "rewards" not in buf.state()
    buf.extend(*_steps(0, 3))
    buf.extend(*_steps(3, 4))
    assert len(buf) == 5
    np.testing.assert_array_equal(buf.data["rewards"][:, 0], [2, 3, 4, 5, 6])
    assert buf.data["terminated"].dtype == bool and buf.data["actions"].shape == (5, 2, 1, 3)
    again = ReplayBuffer(5)
    again.load_state(buf.state())
    for k, v in buf.data.items():
        np.testing.assert_array_equal(again.data[k], v)
    again.extend(*_steps(7, 1))
    np.testing.assert_array_equal(again.data["rewards"][:, 1], [3, 4, 5, 6, 7])


def test_advantage_weights_normalise_with_the_unbiased_std_and_clip():
    adv = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    z = (adv - 1.5) / (np.std(adv, ddof=1) + 1e-6)
    np.testing.assert_allclose(advantage_weights(adv, 1.0, 3.0), np.minimum(np.exp(z), 3.0), rtol=1e-6)
    assert advantage_weights(adv, 1.0, 3.0)[-1] == np.float32(3.0)


def test_minibatch_rows_are_keyed_by_seed_iteration_kind_and_index():
    a = minibatch_rows(0, 1, 0, 2, 10, 50)
    np.testing.assert_array_equal(a, minibatch_rows(0, 1, 0, 2, 10, 50))
    assert a.min() >= 0 and a.max() < 10 and len(set(a)) < 50  # drawn with replacement
    assert not np.array_equal(a, minibatch_rows(0, 1, 1, 2, 10, 50))
