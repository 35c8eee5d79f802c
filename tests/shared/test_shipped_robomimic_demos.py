"""The scripted robomimic demonstrations shipped under data/robomimic/<task>/ (data/README.md: made by
`dppo data robomimic`) are the documented files: their checksums, upstream's keys and shapes, statistics
that agree with stats.json, and the project's own readers accept them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from shared.data.dataset import EPS, load_dppo_dataset, load_normalization

ROOT = Path("data/robomimic")
# task: obs_dim, demonstrations, attempts, transitions, sha256 of train.npz, normalization.npz, stats.json
SHIPPED = {
    "lift": (19, 200, 201, 9785,
        "1b889a00da1f821e8f1963de195be2c0c3e39ea40bca0b473c5a0b6b73fbae5c",
        "7da1d8bbbe3b9149c9c796a31da235e9e3570dea4f9c02ec0e7e6308d652bf87",
        "a8eed6cdb4963878c43fa13302de6e891514048eff42eb7f782c012c9055c054"),
    "can": (23, 100, 105, 14870,
        "94228c5131a6e8eff0a0b5058885760eb9135042f59b739c0f45475e23fd1747",
        "7d6a5e6be3aa91d1fca0d0e402ad6dcdb7d3b93b6778d63788362505b8d32872",
        "0d27ff09a1967947e960b47972094eafdc19d4ccab8c1ae026d1add992cfd0ee"),
    "square": (23, 100, 102, 15074,
        "bfcb30098a0da3d4f8b3b9fd6368b2fa09021fa66cae5b7159e9aac0d5e7765e",
        "db6109f6269350fd8f37452dbe9a3d7ea35bd6224c96a382fe4b43dfb4f86a3a",
        "0e779aa9d03d2bba32cc52b03ab7d8255d0b75f7e7e812b99a50cf040bb8b71f"),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("task", sorted(SHIPPED))
def test_shipped_files_are_the_documented_ones(task: str) -> None:
    *_, train_sha, norm_sha, stats_sha = SHIPPED[task]
    folder = ROOT / task
    assert (_sha256(folder / "train.npz"), _sha256(folder / "normalization.npz"),
            _sha256(folder / "stats.json")) == (train_sha, norm_sha, stats_sha)


@pytest.mark.parametrize("task", sorted(SHIPPED))
def test_shipped_demonstrations_have_upstreams_layout_and_their_statistics(task: str) -> None:
    obs_dim, demos, attempts, transitions, *_ = SHIPPED[task]
    folder = ROOT / task
    with np.load(folder / "train.npz") as f:
        data = {k: f[k] for k in f.files}
    assert sorted(data) == ["actions", "rewards", "states", "terminals", "traj_lengths"]
    assert data["states"].shape == (transitions, obs_dim) and data["actions"].shape == (transitions, 7)
    assert data["rewards"].shape == data["terminals"].shape == (transitions,) and not data["terminals"].any()
    lengths = data["traj_lengths"]
    assert lengths.shape == (demos,) and lengths.sum() == transitions
    ends = np.cumsum(lengths) - 1
    assert np.all(data["rewards"][ends] == 1.0)  # every kept episode ends in the task's success
    for key in ("states", "actions"):  # upstream's normalization: within [-1, 1], both bounds reached
        assert data[key].min() == pytest.approx(-1.0, abs=1e-5) and data[key].max() <= 1.0
    with np.load(folder / "normalization.npz") as f:
        norm = {k: f[k] for k in f.files}
    assert sorted(norm) == ["action_max", "action_min", "obs_max", "obs_min"]
    assert np.all(norm["obs_min"] <= 0) and np.all(norm["obs_max"] >= 0)  # upstream's running min/max from 0
    assert np.all(norm["action_min"] >= -1) and np.all(norm["action_max"] <= 1)  # OSC_POSE's action range
    raw = (data["states"] + 1) / 2 * (norm["obs_max"] - norm["obs_min"] + EPS) + norm["obs_min"]  # (N, Do)
    np.testing.assert_allclose(np.linalg.norm(raw[:, 3:7], axis=1), 1.0, atol=1e-6)  # eef quaternions
    stats = json.loads((folder / "stats.json").read_text())
    assert (stats["task"], stats["demos"], stats["attempts"], stats["transitions"]) == (task, demos, attempts,
                                                                                        transitions)
    assert stats["maker_success_rate"] == demos / attempts and len(stats["reset_seeds"]) == demos
    assert (stats["length_min"], stats["length_max"]) == (lengths.min(), lengths.max())
    assert stats["length_mean"] == pytest.approx(lengths.mean())
    reader = load_normalization(folder / "normalization.npz", obs_dim, 7)  # the project's readers accept them
    assert (reader.obs_min < reader.obs_max).all()
    assert load_dppo_dataset(folder / "train.npz", obs_dim, 7, 4).num_episodes == demos
