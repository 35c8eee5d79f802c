"""shared/data/observations.py: a state array and a camera env's {"state", "rgb"} dict through the same calls;
frames keep uint8 through dtype changes, stacking, slicing and a checkpoint round trip."""

from __future__ import annotations

import numpy as np

from shared.data import observations as ob


def _camera(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {"state": rng.standard_normal((n, 2, 9)).astype(np.float64),
            "rgb": rng.integers(0, 256, (n, 2, 3, 8, 8), dtype=np.uint8)}


def test_camera_observations_go_through_every_operation_leaf_by_leaf():
    rng = np.random.default_rng(0)
    a, b = _camera(rng, 3), _camera(rng, 3)
    steps = ob.stack([a, b])  # (T=2, N=3, ...)
    assert steps["state"].shape == (2, 3, 2, 9) and steps["rgb"].shape == (2, 3, 2, 3, 8, 8)
    flat = ob.as_float(ob.flatten_steps(steps), np.float32)
    assert flat["state"].dtype == np.float32 and flat["rgb"].dtype == np.uint8 and ob.batch_len(flat) == 6
    assert np.array_equal(ob.take(flat, slice(3, 6))["rgb"], b["rgb"])
    assert np.array_equal(ob.concat([a, b])["state"].astype(np.float32), flat["state"])
    assert [x.shape for x in ob.network_inputs(a)] == [(3, 2, 9), (3, 2, 3, 8, 8)]
    replaced = ob.copy_with_rows(a, [1], [ob.take(b, 1)])
    assert np.array_equal(replaced["rgb"][1], b["rgb"][1]) and np.array_equal(replaced["rgb"][0], a["rgb"][0])
    assert not np.array_equal(a["rgb"][1], b["rgb"][1])  # the original is untouched
    back = ob.from_group(ob.to_group(a, "obs"), "obs")
    assert back["rgb"].dtype == np.uint8 and np.array_equal(back["rgb"], a["rgb"])
    empty = ob.empty_steps(a)
    assert empty["rgb"].shape == (0, 3, 2, 3, 8, 8) and empty["rgb"].dtype == np.uint8


def test_a_state_observation_is_the_plain_array_path():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    assert ob.as_float(x, np.float32).dtype == np.float32 and ob.batch_len(x) == 2
    assert ob.flatten_steps(x).shape == (6, 4) and ob.network_inputs(x)[0] is x
    assert ob.to_group(x, "obs") == {"obs": x} and ob.from_group({"obs": x}, "obs") is not None
    assert np.array_equal(ob.copy_with_rows(x, [0], [np.zeros((3, 4))])[0], np.zeros((3, 4)))
