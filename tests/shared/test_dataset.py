"""shared.data.dataset: normalization, the DPPO npz loader and its errors, chunk indexing, batch order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.data.dataset import (
    EpochSampler,
    Normalization,
    TrajectoryDataset,
    gather_batch,
    load_dppo_dataset,
    load_normalization,
    stitched_indices,
    training_draws,
)
from shared.errors import DatasetError, UserError

# ---------------------------------------------------------------- normalization


@settings(max_examples=50, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.5, 100.0), shift=st.floats(-50.0, 50.0))
def test_unnormalize_inverts_normalize_within_range_tolerance(seed, scale, shift):
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(40, 3)) * scale * rng.uniform(0.5, 2.0, size=3) + shift
    states = rng.normal(size=(40, 5)) * scale
    norm = Normalization.from_data(states, actions)
    scaled = norm.normalize_action(actions)
    assert scaled.min() >= -1 - 1e-9 and scaled.max() <= 1 + 1e-9
    back = norm.unnormalize_action(scaled)
    span = norm.action_max - norm.action_min
    assert np.all(np.abs(back - actions) <= 1e-5 * span)
    obs = norm.normalize_obs(states)
    assert obs.min() >= -1 - 1e-9 and obs.max() <= 1 + 1e-9


def test_normalization_formulas_and_save_load_round_trip(tmp_path):
    norm = Normalization(np.array([0.0, -2.0]), np.array([4.0, 2.0]), np.array([-1.0]), np.array([3.0]))
    np.testing.assert_allclose(norm.normalize_obs(np.array([2.0, 2.0])), [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(norm.normalize_action(np.array([-1.0])), [-1.0], atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize_action(np.array([0.0])), [1.0])
    norm.save(tmp_path / "n.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.npz"]  # no temp file left behind
    loaded = load_normalization(tmp_path / "n.npz", obs_dim=2, action_dim=1)
    for key in ("obs_min", "obs_max", "action_min", "action_max"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(norm, key))
        assert getattr(loaded, key).dtype == np.float64


def _norm_file(tmp_path, **override):
    arrays = {"obs_min": np.zeros(3), "obs_max": np.ones(3), "action_min": -np.ones(2), "action_max": np.ones(2)}
    arrays.update(override)
    path = tmp_path / "normalization.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "override, dims, message",
    [
        ({"action_max": None}, {}, "has no 'action_max' array"),
        ({"obs_min": np.zeros((3, 1))}, {}, "'obs_min' has shape [3, 1], expected 1-D"),
        ({"obs_max": np.ones(4)}, {}, "'obs_min' has 3 entries but 'obs_max' has 4"),
        ({}, {"obs_dim": 11}, "has obs dim 3 but the config says obs_dim=11"),
        ({}, {"action_dim": 6}, "has action dim 2 but the config says action_dim=6"),
        ({"action_min": np.array([-1.0, np.nan])}, {}, "'action_min' has 1 non-finite value(s)"),
        ({"obs_max": np.array([1.0, -1.0, 1.0])}, {}, "obs_max < obs_min at index 1"),
        ({"obs_max": np.array(["a", "b", "c"])}, {}, "'obs_max' has dtype <U1, expected floats"),
    ],
)
def test_load_normalization_errors_name_file_and_problem(tmp_path, override, dims, message):
    path = _norm_file(tmp_path, **override)
    with pytest.raises(DatasetError) as err:
        load_normalization(path, **dims)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_load_normalization_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="normalization file not found: .*nope.npz"):
        load_normalization(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match="junk.npz is not a readable .npz file"):
        load_normalization(tmp_path / "junk.npz")
    assert issubclass(DatasetError, UserError)


# ---------------------------------------------------------------- load_dppo_dataset


def _dataset_file(tmp_path, lengths=(4, 6, 3), obs_dim=3, action_dim=2, **override):
    n = int(sum(lengths))
    rng = np.random.default_rng(0)
    arrays = {
        "states": rng.uniform(-1, 1, (n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
        "traj_lengths": np.array(lengths, np.int64),
        "rewards": np.ones(n, np.float32),
    }
    arrays.update(override)
    path = tmp_path / "train.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_load_dppo_dataset_reads_and_truncates_episodes(tmp_path):
    path = _dataset_file(tmp_path)
    ds = load_dppo_dataset(path, obs_dim=3, action_dim=2, horizon_steps=4)
    assert ds.num_episodes == 3 and ds.states.shape == (13, 3) and ds.actions.shape == (13, 2)
    assert ds.states.dtype == np.float32 and ds.traj_lengths.dtype == np.int64 and ds.path == str(path)
    first2 = load_dppo_dataset(path, obs_dim=3, action_dim=2, horizon_steps=4, max_n_episodes=2)
    assert first2.traj_lengths.tolist() == [4, 6] and len(first2.states) == len(first2.actions) == 10
    np.testing.assert_array_equal(first2.states, ds.states[:10])
    assert load_dppo_dataset(path, 3, 2, 1, max_n_episodes=99).num_episodes == 3
    floats = _dataset_file(tmp_path, traj_lengths=np.array([4.0, 6.0, 3.0]))
    assert load_dppo_dataset(floats, 3, 2, 1).traj_lengths.tolist() == [4, 6, 3]


@pytest.mark.parametrize(
    "override, kwargs, message",
    [
        ({"actions": None}, {}, "has no 'actions' array"),
        ({"states": np.zeros(13, np.float32)}, {}, "'states' has shape [13], expected 2-D"),
        ({"states": np.zeros((13, 7), np.float32)}, {"obs_dim": 11}, "has obs dim 7 but the config says obs_dim=11"),
        ({}, {"action_dim": 5}, "has action dim 2 but the config says action_dim=5"),
        ({"actions": np.zeros((12, 2), np.float32)}, {}, "has 13 states but 12 actions"),
        ({"traj_lengths": np.array([4, 6, 4])}, {}, "'traj_lengths' sum to 14 but there are 13 states"),
        ({"traj_lengths": np.array([4, 10, -1])}, {}, "episode 2 has length -1"),
        ({"traj_lengths": np.array([4.0, 6.5, 2.5])}, {}, "must be positive integers, episode 1 has length 6.5"),
        ({"traj_lengths": np.array([[13]])}, {}, "'traj_lengths' has shape [1, 1]"),
        ({"states": np.full((13, 3), np.inf, np.float32)}, {}, "'states' has 39 non-finite value(s)"),
        ({"actions": np.array([[np.nan, 0.0]] * 2 + [[0.0, 0.0]] * 11)}, {}, "'actions' has 2 non-finite value(s)"),
        ({}, {"horizon_steps": 7}, "no episode is at least horizon_steps=7 long (longest of 3 is 6)"),
        ({}, {"horizon_steps": 5, "max_n_episodes": 1}, "horizon_steps=5 long (longest of 1 is 4)"),
        ({}, {"max_n_episodes": 0}, "max_n_episodes must be >= 1, got 0"),
    ],
)
def test_load_dppo_dataset_errors_name_file_and_problem(tmp_path, override, kwargs, message):
    path = _dataset_file(tmp_path, **override)
    args = {"obs_dim": 3, "action_dim": 2, "horizon_steps": 4, **kwargs}
    with pytest.raises(DatasetError) as err:
        load_dppo_dataset(path, **args)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_load_dppo_dataset_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found: .*missing.npz"):
        load_dppo_dataset(tmp_path / "missing.npz", 3, 2, 4)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(DatasetError, match="bad.npz is not a readable .npz file"):
        load_dppo_dataset(bad, 3, 2, 4)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DatasetError, match="single.npy is a single .npy array, not an .npz archive"):
        load_dppo_dataset(tmp_path / "single.npy", 3, 2, 4)
    np.savez(tmp_path / "obj.npz", states=np.array([None, 1], dtype=object), actions=np.zeros(2), traj_lengths=[2])
    with pytest.raises(DatasetError, match="obj.npz is not a readable .npz file"):
        load_dppo_dataset(tmp_path / "obj.npz", 3, 2, 4)


# ---------------------------------------------------------------- indexing and batches


def test_stitched_indices_hand_checked():
    rows = stitched_indices(np.array([3, 5]), 2)
    assert rows.dtype == np.int64
    assert rows.tolist() == [[0, 0], [1, 1], [3, 0], [4, 1], [5, 2], [6, 3]]
    assert stitched_indices(np.array([1, 4, 2]), 3).tolist() == [[1, 0], [2, 1]]
    assert stitched_indices(np.array([2, 2]), 3).shape == (0, 2)


def _labelled_dataset(lengths):
    """states/actions row i = [episode of step i, time of step i in its episode]."""
    episode = np.repeat(np.arange(len(lengths)), lengths)
    time = np.concatenate([np.arange(n) for n in lengths])
    labels = np.stack([episode, time], axis=1).astype(np.float32)
    return TrajectoryDataset(labels, labels + 0.5, np.array(lengths, np.int64), "mem")


def test_gather_batch_repeats_first_state_at_episode_start():
    ds = _labelled_dataset([3, 5])
    rows = stitched_indices(ds.traj_lengths, 2)
    actions, states = gather_batch(ds, rows[[0, 2, 3, 5]], horizon_steps=2, cond_steps=3)
    assert actions.shape == (4, 2, 2) and states.shape == (4, 3, 2)
    assert actions.dtype == states.dtype == np.float32
    assert states[:, :, 1].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1], [1, 2, 3]]  # times
    assert states[:, :, 0].tolist() == [[0, 0, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]]  # episodes
    assert actions[:, :, 1].tolist() == [[0.5, 1.5], [0.5, 1.5], [1.5, 2.5], [3.5, 4.5]]


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    horizon=st.integers(1, 5),
    cond=st.integers(1, 4),
)
def test_gather_batch_never_crosses_an_episode_boundary(lengths, horizon, cond):
    ds = _labelled_dataset(lengths)
    rows = stitched_indices(ds.traj_lengths, horizon)
    expected = [(ep, t) for ep, n in enumerate(lengths) for t in range(n - horizon + 1)]
    assert len(rows) == len(expected)
    if not expected:
        return
    starts = rows[:, 0]
    assert [tuple(ds.states[s].astype(int)) for s in starts] == expected
    assert np.array_equal(rows[:, 1], ds.states[starts, 1])  # offset = time in episode
    actions, states = gather_batch(ds, rows, horizon, cond)
    episode, t0 = ds.states[starts, 0], ds.states[starts, 1]
    assert np.all(actions[:, :, 0] == episode[:, None] + 0.5)
    assert np.all(actions[:, :, 1] == t0[:, None] + np.arange(horizon) + 0.5)
    assert np.all(states[:, :, 0] == episode[:, None])
    want_t = np.maximum(t0[:, None] - np.arange(cond - 1, -1, -1), 0)
    assert np.all(states[:, :, 1] == want_t)
    assert np.all(np.diff(states[:, :, 1], axis=1) >= 0) and np.all(states[:, -1, 1] == t0)


def test_epoch_sampler_covers_every_index_once_and_is_reproducible():
    sampler = EpochSampler(num_samples=23, batch_size=5, seed=7)
    assert len(sampler) == 5
    batches = sampler.batches(3)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    again = EpochSampler(23, 5, 7).batches(3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(sampler.batches(4)))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(EpochSampler(23, 5, 8).batches(3)))
    assert len(EpochSampler(10, 5, 0)) == 2 and len(EpochSampler(3, 10, 0).batches(0)) == 1


def test_training_draws_reproducible_and_in_range():
    t, noise = training_draws(
        seed=1, epoch=2, batch_index=3, batch_size=64, horizon_steps=4, action_dim=3, denoising_steps=20
    )
    assert t.shape == (64,) and t.dtype == np.int64 and t.min() >= 0 and t.max() < 20
    assert noise.shape == (64, 4, 3) and noise.dtype == np.float32
    t2, noise2 = training_draws(1, 2, 3, 64, 4, 3, 20)
    assert np.array_equal(t, t2) and np.array_equal(noise, noise2)
    t3, noise3 = training_draws(1, 2, 4, 64, 4, 3, 20)
    assert not np.array_equal(noise, noise3)
    assert abs(float(noise.mean())) < 0.2 and 0.8 < float(noise.std()) < 1.2
    assert set(training_draws(0, 0, 0, 2000, 1, 1, 5)[0].tolist()) == {0, 1, 2, 3, 4}
