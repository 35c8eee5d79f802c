"""`dppo data convert` on small hand-made D4RL-layout hdf5 files: episodes, normalization, errors."""

import argparse
import sys

import h5py
import numpy as np
import pytest

import shared.data.d4rl
from dppo import cli
from dppo.commands.data import register
from shared.data.d4rl import convert_d4rl_hdf5, locate_d4rl_dataset
from shared.data.dataset import load_dppo_dataset, load_normalization
from shared.errors import DatasetError, UserError

# Episodes in file order: (length, reward per step, ends with) -- then 3 unfinished steps.
EPISODES = [(4, 1.0, "terminal"), (3, 0.0, "timeout"), (5, 0.5, "terminal"), (2, 2.0, "timeout")]
TRAILING = 3


def _has_data_command(parser: argparse.ArgumentParser) -> bool:
    return any(
        isinstance(action, argparse._SubParsersAction) and "data" in action.choices for action in parser._actions
    )


def _dppo(argv: list[str]) -> int:
    """dppo.cli.main once the lead has wired `data` in; until then the same thing with our own parser."""
    if _has_data_command(cli.build_parser()):
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="dppo")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"dppo {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _arrays() -> dict[str, np.ndarray]:
    n = sum(length for length, _, _ in EPISODES) + TRAILING
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (n, 3))
    obs[5, 0] = -50.0  # extreme inside the zero-reward episode
    obs[-1, 1] = 100.0  # extreme inside the unfinished trailing steps
    actions = rng.uniform(-0.5, 0.5, (n, 2)).astype(np.float32)
    rewards = np.zeros(n, np.float32)
    terminals, timeouts = np.zeros(n, bool), np.zeros(n, bool)
    i = 0
    for length, reward, end in EPISODES:
        rewards[i : i + length] = reward
        (terminals if end == "terminal" else timeouts)[i + length - 1] = True
        i += length
    rewards[i:] = 9.0
    return {"observations": obs, "actions": actions, "rewards": rewards, "terminals": terminals, "timeouts": timeouts}


def _hdf5(path, **override) -> str:
    arrays = {**_arrays(), **override}
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if value is not None:
                f.create_dataset(key, data=value)
    return str(path)


def test_convert_splits_episodes_drops_zero_reward_and_trailing_steps(tmp_path, capsys):
    src = _hdf5(tmp_path / "hopper.hdf5")
    out = tmp_path / "out"
    assert _dppo(["data", "convert", "--d4rl", src, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 episodes, 11 transitions (obs_dim 3, action_dim 2)" in printed
    assert "skipped 1 episodes with return <= 0, dropped 3 steps" in printed
    assert "episode return: mean 3.5 std 0.7071 min 2.5 max 4" in printed
    assert f"wrote {out / 'train.npz'}" in printed and f"wrote {out / 'normalization.npz'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["normalization.npz", "train.npz"]  # no temp files

    raw = _arrays()
    norm = load_normalization(out / "normalization.npz", obs_dim=3, action_dim=2)
    np.testing.assert_array_equal(norm.obs_min, raw["observations"].min(axis=0))  # over every transition
    np.testing.assert_array_equal(norm.obs_max, raw["observations"].max(axis=0))
    assert norm.obs_min[0] == -50.0 and norm.obs_max[1] == 100.0
    np.testing.assert_allclose(norm.action_min, raw["actions"].min(axis=0).astype(np.float64))

    kept = np.r_[0:4, 7:12, 12:14]  # episodes 0, 2, 3
    with np.load(out / "train.npz") as data:
        assert data["traj_lengths"].tolist() == [4, 5, 2] and data["traj_lengths"].dtype == np.int64
        assert data["states"].dtype == data["actions"].dtype == data["rewards"].dtype == np.float32
        assert data["terminals"].dtype == bool
        assert np.flatnonzero(data["terminals"]).tolist() == [3, 8]  # timeouts are not terminals
        np.testing.assert_array_equal(data["rewards"], raw["rewards"][kept])
        want = 2 * (raw["observations"][kept] - norm.obs_min) / (norm.obs_max - norm.obs_min + 1e-6) - 1
        np.testing.assert_allclose(data["states"], want, atol=1e-6)
        np.testing.assert_allclose(norm.unnormalize_action(data["actions"]), raw["actions"][kept], atol=1e-5)
    ds = load_dppo_dataset(out / "train.npz", obs_dim=3, action_dim=2, horizon_steps=4)
    assert ds.num_episodes == 3 and len(ds.states) == 11
    assert ds.states.min() >= -1 - 1e-6 and ds.states.max() <= 1 + 1e-6


def test_keep_zero_reward_episodes_flag(tmp_path, capsys):
    src = _hdf5(tmp_path / "d.hdf5")
    assert _dppo(["data", "convert", "--d4rl", src, "--out", str(tmp_path), "--keep-zero-reward-episodes"]) == 0
    assert "4 episodes, 14 transitions" in capsys.readouterr().out
    with np.load(tmp_path / "train.npz") as data:
        assert data["traj_lengths"].tolist() == [4, 3, 5, 2]
    summary = convert_d4rl_hdf5(src, tmp_path / "again", drop_zero_reward_episodes=False)
    assert (summary.num_episodes, summary.return_min, summary.skipped_zero_reward_episodes) == (4, 0.0, 0)


def _error(argv, capsys) -> str:
    assert _dppo(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dppo data: error: ") and err.strip().count("\n") == 0 and "Traceback" not in err
    return err


def test_missing_dataset_key_and_non_hdf5_file_exit_2(tmp_path, capsys):
    out = str(tmp_path / "o")
    src = _hdf5(tmp_path / "no_timeouts.hdf5", timeouts=None)
    err = _error(["data", "convert", "--d4rl", src, "--out", out], capsys)
    assert "has no 'timeouts' dataset" in err and "no_timeouts.hdf5" in err
    text = tmp_path / "notes.hdf5"
    text.write_text("just text")
    assert f"{text} is not an HDF5 file" in _error(["data", "convert", "--d4rl", str(text), "--out", out], capsys)
    missing = tmp_path / "missing.hdf5"
    err = _error(["data", "convert", "--d4rl", str(missing), "--out", out], capsys)
    assert f"D4RL file not found: {missing}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"rewards": np.ones(5, np.float32)}, "different lengths (observations 17, actions 17, rewards 5"),
        ({"observations": np.zeros(17)}, "'observations' has shape [17], expected 2-D"),
        ({"actions": np.full((17, 2), np.nan)}, "'actions' has 34 non-finite value(s)"),
        ({"terminals": np.zeros(17, bool), "timeouts": np.zeros(17, bool)}, "no complete episode"),
        ({"rewards": np.zeros(17, np.float32)}, "all 4 complete episodes have a return <= 0"),
    ],
)
def test_bad_hdf5_contents_raise_one_dataset_error(tmp_path, override, message):
    src = _hdf5(tmp_path / "bad.hdf5", **override)
    with pytest.raises(DatasetError) as err:
        convert_d4rl_hdf5(src, tmp_path / "out")
    assert message in str(err.value) and "bad.hdf5" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_d4rl_name_without_the_d4rl_package_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shared.data.d4rl, "_d4rl_installed", lambda: False)
    err = _error(["data", "convert", "--d4rl-name", "hopper-medium-v2", "--out", str(tmp_path)], capsys)
    assert "the d4rl package is not installed" in err and "--d4rl" in err


def test_d4rl_name_finds_the_file_d4rl_keeps(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shared.data.d4rl, "_d4rl_installed", lambda: True)
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    src = _hdf5(tmp_path / "hopper_medium-v2.hdf5")
    _hdf5(tmp_path / "hopper_medium_replay-v2.hdf5")
    assert locate_d4rl_dataset("hopper-medium-v2") == src
    assert _dppo(["data", "convert", "--d4rl-name", "hopper-medium-v2", "--out", str(tmp_path / "o")]) == 0
    assert f"converted {src}: 3 episodes" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="'walker2d-medium-v2' not found under .*walker2d_medium-v2"):
        locate_d4rl_dataset("walker2d-medium-v2")
    with pytest.raises(DatasetError, match="ambiguous"):
        locate_d4rl_dataset("hopper-medium")


def test_source_is_required_and_exclusive(tmp_path):
    with pytest.raises(SystemExit) as exc:
        _dppo(["data", "convert", "--out", str(tmp_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        _dppo(["data", "convert", "--d4rl", "a.hdf5", "--d4rl-name", "hopper-medium-v2", "--out", str(tmp_path)])
    assert exc.value.code == 2
