"""`dppo data collect`: a Gaussian teacher's stochastic rollouts saved as a dataset in raw env units,
whether the teacher saw raw observations or ones normalized by its config's normalization file."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from dppo.cli import main
from shared.data.dataset import Normalization, load_normalization

TEACHERS = {
    "raw": "configs/hopper/ppo_gaussian_mlp_teacher.yaml",  # normalization_path: null
    "normalized": "configs/hopper/ppo_gaussian_mlp.yaml",  # normalization_path: a file (below)
}
SMALL = ["model.actor.mlp_dims=[16,16]", "model.critic.mlp_dims=[16,16,16]", "env.n_envs=2", "train.n_steps=16",
         "train.batch_size=16", "train.update_epochs=1", "train.n_train_itr=2", "train.val_freq=100"]


def _teacher(config: str, root, overrides: list[str]) -> str:
    """A teacher checkpoint: two small PPO iterations from scratch (the second one trains)."""
    argv = ["finetune", "--config", config, "--backend", "torch", f"logdir={root / 'teacher'}", *SMALL, *overrides]
    assert main(argv) == 0
    return str(root / "teacher" / "checkpoint" / "state_1.npz")


@pytest.mark.parametrize("view", sorted(TEACHERS))
def test_collected_episodes_replay_in_the_env_from_raw_states_and_actions(view, tmp_path):
    """The first episode of env 0 (reset with --seed) replays step for step in a fresh Hopper-v5: its
    stored actions, mapped back with the written normalization file, drive the simulator through
    exactly its stored states, so both are in raw env units however the teacher saw the env."""
    config, overrides = TEACHERS[view], []
    if view == "normalized":  # the hopper data's observation range; the teacher's [-1, 1] is +-0.5 in the env
        hopper = load_normalization("data/hopper-medium-v2/normalization.npz")
        Normalization(hopper.obs_min, hopper.obs_max, np.full(3, -0.5), np.full(3, 0.5)).save(tmp_path / "n.npz")
        overrides = [f"normalization_path={tmp_path / 'n.npz'}"]
    out = tmp_path / "data"
    argv = ["data", "collect", "--config", config, "--teacher", _teacher(config, tmp_path, overrides), "--out",
            str(out), "--transitions", "300", "--seed", "7", *SMALL, *overrides]
    assert main(argv) == 0
    data = np.load(out / "train.npz")
    norm = load_normalization(out / "normalization.npz", 11, 3)
    stats = json.loads((out / "stats.json").read_text())
    lengths = data["traj_lengths"]
    assert lengths.sum() == len(data["states"]) == stats["transitions"] >= 300
    assert np.abs(data["states"]).max() <= 1 + 1e-6 and np.abs(data["actions"]).max() <= 1 + 1e-6
    states = norm.obs_min + (data["states"] + 1) / 2 * (norm.obs_max - norm.obs_min)  # (N, Do) raw
    actions = norm.unnormalize_action(data["actions"].astype(np.float64))  # (N, Da) env scale
    assert np.all(np.abs(actions) <= (0.5 if view == "normalized" else 1) + 1e-6)  # what the teacher can reach

    env = gym.make("Hopper-v5")
    obs, _ = env.reset(seed=7)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    first = [s for s in starts if np.allclose(states[s], obs, atol=1e-5)]
    assert len(first) == 1, "env 0's first episode (reset with the seed) is in the data"
    s, n = first[0], lengths[list(starts).index(first[0])]
    for t in range(n):
        assert np.allclose(states[s + t], obs, atol=1e-4), t
        obs, reward, term, trunc, _ = env.step(actions[s + t])
        assert np.isclose(data["rewards"][s + t], reward, atol=1e-4), t
    assert term and data["terminals"][s + n - 1] and not data["terminals"][s : s + n - 1].any()
    env.close()
