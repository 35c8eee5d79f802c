"""The datasets and checkpoints shipped under data/ (made by the project's own code, data/README.md) load
and carry the shapes and statistics that data/README.md documents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.checkpoint import load_checkpoint
from shared.config.loading import load_config
from shared.data.dataset import load_dppo_dataset, load_normalization
from shared.data.envs import d4rl_normalized_score

# env: (obs_dim, action_dim, transitions, episodes, return mean, teacher itr, pre-training epochs)
SHIPPED = {
    "hopper": (11, 3, 150158, 387, 1199.2, 249, 40),
    "walker2d": (17, 6, 100243, 182, 2060.8, 950, 60),
    "halfcheetah": (17, 6, 104000, 104, 4150.3, 999, 60),
}


def _files(env: str) -> tuple[str, str]:
    """The shipped teacher and pre-trained checkpoint of env (data/teacher/, data/checkpoints/)."""
    _, _, _, _, _, itr, epochs = SHIPPED[env]
    return (f"data/teacher/{env}_ppo_gaussian_itr{itr}.npz",
            f"data/checkpoints/{env}_pretrain_diffusion_mlp_e{epochs}.npz")


@pytest.mark.parametrize("env", sorted(SHIPPED))
def test_shipped_dataset_has_the_documented_shapes_and_statistics(env):
    obs_dim, action_dim, transitions, episodes, return_mean, _, _ = SHIPPED[env]
    root = f"data/{env}-medium-v2"
    with np.load(f"{root}/train.npz") as f:
        data = {k: f[k] for k in f.files}
    assert data["states"].shape == (transitions, obs_dim) and data["actions"].shape == (transitions, action_dim)
    assert data["rewards"].shape == data["terminals"].shape == (transitions,)
    assert data["traj_lengths"].shape == (episodes,) and data["traj_lengths"].sum() == transitions
    for key in ("states", "actions"):  # normalized with the data's own min and max: both bounds are reached
        assert data[key].min() == pytest.approx(-1.0, abs=1e-5) and data[key].max() == pytest.approx(1.0, abs=1e-5)
    ends = np.cumsum(data["traj_lengths"])
    returns = np.add.reduceat(data["rewards"].astype(np.float64), np.concatenate([[0], ends[:-1]]))
    assert not data["terminals"][np.setdiff1d(np.arange(transitions), ends - 1)].any()  # only last steps end
    with open(f"{root}/stats.json") as f:
        stats = json.load(f)
    assert stats["env"] == f"{env}-medium-v2" and stats["teacher_checkpoint"] == _files(env)[0]
    assert (stats["transitions"], stats["episodes"]) == (transitions, episodes)
    assert returns.mean() == pytest.approx(stats["return_mean"], rel=1e-5) and round(returns.mean(), 1) == return_mean
    assert returns.std() == pytest.approx(stats["return_std"], rel=1e-4)
    assert stats["d4rl_score_mean"] == pytest.approx(d4rl_normalized_score(f"{env}-medium-v2", stats["return_mean"]))
    norm = load_normalization(f"{root}/normalization.npz", obs_dim, action_dim)  # the readers' own checks
    assert (norm.obs_min < norm.obs_max).all() and (norm.action_min < norm.action_max).all()
    assert load_dppo_dataset(f"{root}/train.npz", obs_dim, action_dim, 4).num_episodes == episodes


@pytest.mark.parametrize("env", sorted(SHIPPED))
def test_shipped_checkpoints_are_the_documented_ones(env):
    obs_dim, action_dim, _, _, _, itr, epochs = SHIPPED[env]
    teacher, pretrained = _files(env)
    ckpt = load_checkpoint(pretrained)
    assert ckpt.meta["kind"] == "pretrain" and ckpt.meta["epoch"] == epochs and sorted(ckpt.groups) == ["ema", "model"]
    cfg = ckpt.meta["config"]
    assert (cfg["env"], cfg["obs_dim"], cfg["action_dim"]) == (f"{env}-medium-v2", obs_dim, action_dim)
    first = ckpt.group("ema")["network.mlp_mean.layers.0.weight"]
    assert first.shape == (512, obs_dim + 4 * action_dim + 16)  # cond, noisy 4-step chunk, time embedding
    gaussian = load_checkpoint(teacher)
    assert gaussian.meta["kind"] == "finetune" and gaussian.meta["itr"] == itr
    assert gaussian.config["obs_dim"] == obs_dim and gaussian.config["action_dim"] == action_dim


@pytest.mark.parametrize("env", ["walker2d", "halfcheetah"])
def test_shipped_teacher_was_trained_with_the_shipped_teacher_config(env):
    """The walker2d and halfcheetah teachers ran configs/<env>/ppo_gaussian_mlp_teacher.yaml as it is
    (only the log directory differs), so data/README.md's command remakes them. Hopper's teacher predates
    a later, behaviour-neutral key in its config and is not held to this."""
    teacher, _ = _files(env)
    trained = load_checkpoint(teacher).config
    shipped = load_config(f"configs/{env}/ppo_gaussian_mlp_teacher.yaml", [f"logdir={trained['logdir']}"])
    assert trained == shipped
    norm = load_normalization(shipped["normalization_path"], 17, 6)  # the teacher's view: actions in the env's box
    assert (norm.action_min == -1).all() and (norm.action_max == 1).all()
