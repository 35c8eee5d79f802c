"""`dppo data robomimic`: scripted demonstrations written twice are the same bytes, and every kept episode
replays: the env reset with its recorded seed starts from its first state and its recorded actions, read
back through normalization.npz, drive the task to success."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dppo.cli import main
from shared.data.dataset import EPS
from shared.data.robomimic import make_robomimic_env

FILES = ("train.npz", "normalization.npz", "stats.json")
SEED = 1


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> list:
    """The same command run twice (Lift, 2 demonstrations)."""
    outs = [tmp_path_factory.mktemp("demos") / "lift" for _ in range(2)]
    for out in outs:
        assert main(["data", "robomimic", "--task", "lift", "--demos", "2", "--seed", str(SEED), "--out",
                     str(out)]) == 0
    return outs


def test_the_command_reproduces_its_files_byte_for_byte(made, capsys) -> None:
    for name in FILES:
        assert (made[0] / name).read_bytes() == (made[1] / name).read_bytes(), name
    stats = json.loads((made[0] / "stats.json").read_text())
    assert stats["demos"] == 2 and stats["attempts"] >= 2 and stats["maker_success_rate"] == 2 / stats["attempts"]
    with np.load(made[0] / "train.npz") as data:
        assert sorted(data.files) == ["actions", "rewards", "states", "terminals", "traj_lengths"]
        assert data["traj_lengths"].sum() == len(data["states"]) == len(data["actions"]) == stats["transitions"]
        assert data["states"].shape[1] == 19 and data["actions"].shape[1] == 7


def test_every_recorded_episode_replays_to_success(made) -> None:
    with np.load(made[0] / "train.npz") as data, np.load(made[0] / "normalization.npz") as norm:
        lengths = data["traj_lengths"]
        states = (data["states"] + 1) / 2 * (norm["obs_max"] - norm["obs_min"] + EPS) + norm["obs_min"]  # (N, Do)
        actions = (data["actions"] + 1) / 2 * (norm["action_max"] - norm["action_min"] + EPS) + norm["action_min"]
        rewards = data["rewards"]
    seeds = json.loads((made[0] / "stats.json").read_text())["reset_seeds"]
    env = make_robomimic_env("lift", model_seed=SEED)
    start = 0
    for length, reset_seed in zip(lengths, seeds, strict=True):
        obs, _ = env.reset(seed=reset_seed)
        np.testing.assert_allclose(obs, states[start], rtol=0, atol=1e-12)  # the same initial state
        for t in range(start, start + length):
            # the actions come back from the normalized file within ~1e-16, which contacts can amplify
            np.testing.assert_allclose(obs, states[t], rtol=0, atol=1e-3)
            obs, reward, _, _, info = env.step(actions[t])
            assert reward == rewards[t]
        assert info["is_success"]
        start += length
    env.close()


def test_an_unwritable_output_is_one_line(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["data", "robomimic", "--task", "lift", "--demos", "1", "--out", str(blocker)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a file" in err
