"""Fine-tuning with camera frames: upstream's ft_ppo_diffusion_mlp_img and ft_ppo_gaussian_mlp_img (robomimic Lift,
vendored, unchanged but for lengths and the policy's path) from policies pre-trained one epoch by upstream's image
pre-training configs. DPPO on torch through `dppo finetune` (camera envs in worker processes, train.augment,
grad_accumulate, a checkpoint whose rollout and env groups hold the frames, an exact resume) and Gaussian PPO on TF;
and the first training iteration's numbers of both configs agree between the backends on one rollout."""

import json

import numpy as np
import pytest

from dppo.algorithms.agents import noise_shape
from dppo.cli import main
from dppo.training.finetune import make_trainer
from shared.checkpoint import load_checkpoint
from shared.data.synthetic import write_synthetic_dataset
from shared.settings import load_settings

PRE = "tests/fixtures/upstream_cfg/cfg/robomimic/pretrain/lift"
FT = "tests/fixtures/upstream_cfg/cfg/robomimic/finetune/lift"
# lengths only: 2 envs, 16-step episodes; a rollout of as many minibatches as the config accumulates (15 for DPPO,
# 5 for Gaussian PPO), so one optimizer step is taken
SHORT = ["wandb=null", "env.n_envs=2", "env.max_episode_steps=16", "train.val_freq=2", "train.save_model_freq=1",
         "train.batch_size=2", "train.update_epochs=1"]
STEPS = {"diffusion": 15, "gaussian": 5}


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_finetune")
    data = root / "data"
    write_synthetic_dataset(data / "robomimic" / "lift-img", 9, 7, num_episodes=2, episode_length=(8, 10),
                            image_shape=(3, 96, 96))
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DPPO_DATA_DIR", str(data))
        mp.setenv("DPPO_LOG_DIR", str(root / "logs"))
        for kind in STEPS:
            assert main(["pretrain", "--config", f"{PRE}/pre_{kind}_mlp_img.yaml", "--backend", "torch", "--quiet",
                         f"logdir={root / kind}", "wandb=null", "train.n_epochs=1", "train.batch_size=8"]) == 0
            out[kind] = root / kind / "checkpoint" / "state_1.npz"
    return {"data": data, "logs": root / "logs", **out}


def _finetune(policies, monkeypatch, kind, backend, logdir, iterations):
    monkeypatch.setenv("DPPO_DATA_DIR", str(policies["data"]))
    monkeypatch.setenv("DPPO_LOG_DIR", str(policies["logs"]))
    assert main(["finetune", "--config", f"{FT}/ft_ppo_{kind}_mlp_img.yaml", "--backend", backend, "--quiet",
                 f"logdir={logdir}", f"base_policy_path={policies[kind]}", *SHORT, f"train.n_steps={STEPS[kind]}",
                 f"train.n_train_itr={iterations}"]) == 0
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def test_dppo_on_camera_frames_runs_checkpoints_the_frames_and_resumes_exactly(policies, monkeypatch, tmp_path):
    full = _finetune(policies, monkeypatch, "diffusion", "torch", tmp_path / "full", 3)
    assert [r["eval"] for r in full] == [True, False, True] and "success_rate" in full[0]
    assert all(r["frames_per_s"] > 0 for r in full)  # what rendering costs, in every record
    assert full[1]["v_loss"] > 0 and np.isfinite(full[1]["pg_loss"])
    ckpt = load_checkpoint(tmp_path / "full" / "checkpoint" / "state_1.npz")
    assert ckpt.groups["rollout"]["obs.rgb"].dtype == np.uint8 and ckpt.groups["rollout"]["obs.rgb"].shape == (
        2, 1, 3, 96, 96)
    assert "0.history.rgb" in ckpt.groups["env"]
    _finetune(policies, monkeypatch, "diffusion", "torch", tmp_path / "resumed", 2)
    resumed = _finetune(policies, monkeypatch, "diffusion", "torch", tmp_path / "resumed", 3)
    drop = ("seconds", "frames_per_s")  # wall-clock measurements
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == [
        {k: v for k, v in r.items() if k not in drop} for r in full]


def test_gaussian_ppo_on_camera_frames_runs_on_tf(policies, monkeypatch, tmp_path):
    recs = _finetune(policies, monkeypatch, "gaussian", "tf", tmp_path / "gaussian", 2)
    assert [r["eval"] for r in recs] == [True, False] and np.isfinite(recs[1]["v_loss"])


@pytest.mark.parametrize("kind", list(STEPS))
def test_the_first_training_iteration_agrees_between_backends(policies, monkeypatch, kind):
    """One rollout of random frames and rewards scored and updated by both backends' trainers (train.augment and
    grad_accumulate as configured): the same values, returns and losses, and one accumulated step taken by each.
    pg_loss and approx_kl are ~1e-8 here (the first update's ratio is 1), so they are compared on that scale.
    Parameters after the step are not compared element by element: Adam's first step is lr * g / (|g| + eps), and
    where g is rounding noise (a ViT key bias's gradient is 0 exactly: softmax ignores it) that is +-lr either way;
    parity_tests/test_image_model_parity.py compares the gradients themselves."""
    monkeypatch.setenv("DPPO_DATA_DIR", str(policies["data"]))
    monkeypatch.setenv("DPPO_LOG_DIR", str(policies["logs"]))
    T, N = STEPS[kind], 2
    cfg = load_settings(f"{FT}/ft_ppo_{kind}_mlp_img.yaml", [*SHORT, f"train.n_steps={T}", "train.n_train_itr=3",
                                                               f"base_policy_path={policies[kind]}"])
    trainers = {b: make_trainer(cfg, b) for b in ("torch", "tf")}
    rng = np.random.default_rng(0)

    def frames(*lead):
        return {"state": rng.uniform(-1, 1, (*lead, 1, 9)).astype(np.float32),
                "rgb": rng.integers(0, 256, (*lead, 1, 3, 96, 96), dtype=np.uint8)}

    obs = frames(T, N)
    acts = [trainers["torch"].agent.act({k: v[t] for k, v in obs.items()},
                                        rng.standard_normal(noise_shape(cfg, N)).astype(np.float32), False)
            for t in range(T)]
    first = np.zeros((T + 1, N))
    first[0] = 1
    ro = {"obs": obs, "samples": {k: np.stack([a[k] for a in acts]) for k in acts[0]}, "next_obs": frames(N),
          "rewards": rng.uniform(0, 1, (T, N)), "terminated": np.zeros((T, N)), "first": first}
    def head(trainer):
        return {k: np.array(v) for k, v in trainer.agent.state_groups()["model"].items() if k.startswith("critic.Q1.")}

    start = head(trainers["torch"])
    records = {b: t.train(ro, 2, cfg.seed) for b, t in trainers.items()}  # iteration 2: past the critic warm-up
    for k, v in records["torch"].items():
        scale = 1e-6 if k in ("pg_loss", "approx_kl") else 0.0
        np.testing.assert_allclose(records["tf"][k], v, rtol=1e-4, atol=scale, err_msg=k)
    assert records["torch"]["v_loss"] > 0
    for trainer in trainers.values():  # the accumulated step was taken
        assert any(not np.array_equal(v, start[k]) for k, v in head(trainer).items())


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_scoring_a_chain_encodes_each_frame_once_and_gives_the_per_step_encodings_numbers(policies, monkeypatch,
                                                                                           backend):
    """DPPO's update scores every fine-tuned step of a chain; an image denoiser without dropout encodes each
    observation once and reuses the features (DiffusionConfig.condition_once_per_row) where upstream encodes the
    repeated frame for every step: the same log-probabilities, to float32 rounding."""
    from dppo.algorithms.agents import make_agent
    from shared.settings import DiffusionConfig

    monkeypatch.setenv("DPPO_DATA_DIR", str(policies["data"]))
    cfg = load_settings(f"{FT}/ft_ppo_diffusion_mlp_img.yaml", [*SHORT, "train.n_steps=15",
                                                                 f"base_policy_path={policies['diffusion']}"],
                        ("finetune",))
    model = make_agent(cfg, backend).model
    assert model.dc.condition_once_per_row  # upstream's image configs have no dropout in the encoder
    rng = np.random.default_rng(0)
    B, K = 3, model.ft_steps
    state = rng.standard_normal((B, 1, 9)).astype(np.float32)
    rgb = rng.integers(0, 256, (B, 1, 3, 96, 96), dtype=np.uint8)  # a different frame per row
    chains = rng.standard_normal((B, K + 1, model.dc.horizon_steps, model.dc.action_dim)).astype(np.float32)
    if backend == "torch":
        import torch

        def score(frames):
            with torch.no_grad():
                obs = (torch.from_numpy(state), torch.from_numpy(frames))
                return model.logprobs(obs, torch.from_numpy(chains)).numpy()
    else:
        import tensorflow as tf

        def score(frames):
            return model.logprobs((tf.constant(state), tf.constant(frames)), tf.constant(chains)).numpy()
    once = score(rgb)
    # the frames matter: the rows' frames in another order score differently, so a row scored with another
    # row's features would show below
    assert np.abs(score(rgb[::-1].copy()) - once).max() > 1e-3
    monkeypatch.setattr(DiffusionConfig, "condition_once_per_row", property(lambda self: False))
    per_step = score(rgb)
    assert once.shape == (B, K, model.dc.horizon_steps, model.dc.action_dim)
    np.testing.assert_allclose(once, per_step, rtol=1e-5, atol=1e-4)
