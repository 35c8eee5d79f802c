"""ONNX export, the third runtime: `dppo export --format onnx` of a pre-training checkpoint and of a DPPO
fine-tuning one (base actor and actor_ft), run by onnxruntime, gives the SavedModel's actions (and the
in-memory twins') on the same noise, at any batch; bad requests get one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from core_tf.runtime.export import default_noise
from dppo.algorithms.ppo import initial_params as dppo_initial_params
from dppo.cli import main
from dppo.interop.onnx import OnnxPolicy
from shared.checkpoint import Checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.param_spec import diffusion_mlp_spec, torch_default_init
from shared.settings import read_config
from shared.tolerances import SERVING_RTOL, relative_diff

NORM = "data/hopper-medium-v2/normalization.npz"
PRETRAIN = "configs/hopper/pretrain_diffusion_mlp.yaml"
DPPO = "configs/hopper/finetune_ppo_diffusion_mlp.yaml"
# short chains: torch.export and XLA unroll them, each step costs export and compile time
SMALL = ["model.network.mlp_dims=[32,32,32]", "denoising_steps=4", f"normalization_path={NORM}"]


def _pretrain_checkpoint(path) -> None:
    cfg = load_config(PRETRAIN, SMALL)
    params = torch_default_init(diffusion_mlp_spec(read_config(cfg).model.network, "network."), 4)
    save_checkpoint(path, Checkpoint({"model": params, "ema": params}, {"config": cfg, "kind": "pretrain"}))


def _dppo_checkpoint(path) -> None:
    cfg = load_config(DPPO, ["model.actor.mlp_dims=[32,32,32]", "model.critic.mlp_dims=[16,16,16]",
                             "base_policy_path=null", f"normalization_path={NORM}", "denoising_steps=5",
                             "ft_denoising_steps=3"])
    save_checkpoint(path, Checkpoint({"model": dppo_initial_params(read_config(cfg))},
                                     {"config": cfg, "kind": "finetune"}))


@pytest.fixture(scope="module", params=["pretrain", "dppo"])
def exports(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"onnx_{request.param}")
    (_pretrain_checkpoint if request.param == "pretrain" else _dppo_checkpoint)(tmp / "c.npz")
    for fmt in ("savedmodel", "onnx"):
        assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / fmt), "--format", fmt,
                     "--act-steps", "2"]) == 0
    signature = json.loads((tmp / "onnx" / "1" / "signature.json").read_text())
    return tmp, OnnxPolicy(tmp / "onnx" / "1"), tf.saved_model.load(str(tmp / "savedmodel" / "1")), signature


def _states(batch: int, seed: int) -> np.ndarray:
    with np.load(NORM) as n:
        lo, hi = n["obs_min"], n["obs_max"]
    return (lo + np.random.default_rng(seed).uniform(0, 1, (batch, 1, len(lo))) * (hi - lo)).astype(np.float32)


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_onnx_graphs_give_the_saved_models_actions_on_the_same_noise(exports, batch):
    _, onnx, saved, signature = exports
    _, steps, ta, da = signature["inputs"]["noise"]
    state = _states(batch, batch)
    # deterministic: serving_default draws its own (stateless) noise; the ONNX graph takes the same numbers
    shape = type("Shape", (), {"num_steps": steps - 1, "horizon_steps": ta, "action_dim": da})
    noise = np.transpose(default_noise(batch, shape), (1, 0, 2, 3))
    served = saved.signatures["serving_default"](state=tf.constant(state))["action"].numpy()
    ours = onnx.run("deterministic", state, noise)
    assert ours.shape == served.shape == (batch, 2, da)
    assert relative_diff(ours, served) <= SERVING_RTOL
    noise = np.random.default_rng(batch).standard_normal((batch, steps, ta, da)).astype(np.float32)
    sampled = saved.signatures["sample"](state=tf.constant(state), noise=tf.constant(noise))["action_chunk"].numpy()
    assert relative_diff(onnx.run("sample", state, noise), sampled) <= SERVING_RTOL


def test_a_state_gets_the_same_onnx_action_in_any_batch(exports):
    _, onnx, _, signature = exports
    _, steps, ta, da = signature["inputs"]["noise"]
    state = _states(5, 0)
    noise = np.random.default_rng(1).standard_normal((5, steps, ta, da)).astype(np.float32)
    together = onnx.run("deterministic", state, noise)
    alone = np.concatenate([onnx.run("deterministic", state[i:i + 1], noise[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-6)


def test_onnx_export_refuses_xla_and_an_existing_version(exports, capsys):
    tmp = exports[0]
    assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "onnx"), "--format", "onnx",
                 "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "onnx"), "--format", "onnx",
                 "--no-xla"]) == 2
    assert "--no-xla is a SavedModel option" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "onnx"), "--format", "onnx",
                 "--max-bucket", "4"]) == 2
    assert "--max-bucket is a SavedModel option" in capsys.readouterr().err
