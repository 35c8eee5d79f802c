"""SavedModel export: signatures, a TF-only process agreeing with both frameworks, the REST body."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import torch

import core_tf.runtime.canonical as tf_io
import core_torch.runtime.canonical as torch_io
from core_tf.diffusion.model import DiffusionModel as TFDiffusion
from core_tf.runtime.export import PolicyShape, default_noise
from core_torch.diffusion.model import DiffusionModel as TorchDiffusion
from dppo.cli import main
from shared.checkpoint import Checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.data.dataset import load_normalization
from shared.param_spec import diffusion_mlp_spec, torch_default_init
from shared.settings import read_config
from shared.tolerances import SERVING_RTOL, relative_diff

CONFIG = "configs/hopper/pretrain_diffusion_mlp.yaml"
NORM = "data/hopper-medium-v2/normalization.npz"
CLIENT = "tests/cli/serving_client.py"
STEPS = 5  # a short chain: every served (version, batch, signature) compiles it under XLA, unrolled


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A torch-trained-style .pt checkpoint and a TF-format checkpoint of the same weights, both exported."""
    tmp = tmp_path_factory.mktemp("export")
    cfg = load_config(CONFIG, ["model.network.mlp_dims=[32,32,32]", f"denoising_steps={STEPS}",
                               f"normalization_path={NORM}"])
    dc = read_config(cfg).model
    params = torch_default_init(diffusion_mlp_spec(dc.network, "network."), 4)
    ckpt = Checkpoint({"model": params, "ema": params}, {"config": cfg, "kind": "pretrain", "epoch": 1})
    save_checkpoint(tmp / "c.npz", ckpt)
    for fmt, name in (("torch", "c.pt"), ("tf", "c_tf")):
        assert main(["convert", "--checkpoint", str(tmp / "c.npz"), "--to", fmt, "--out", str(tmp / name)]) == 0
    assert main(["export", "--checkpoint", str(tmp / "c.pt"), "--out", str(tmp / "models")]) == 0
    assert main(["export", "--checkpoint", str(tmp / "c_tf"), "--out", str(tmp / "models")]) == 0
    return tmp, dc, params


def test_saved_model_cli_lists_both_signatures_with_dynamic_batch(exported):
    tmp, _, _ = exported
    assert sorted(p.name for p in (tmp / "models").iterdir()) == ["1", "2"]  # versions: torch, then TF checkpoint
    out = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                          str(tmp / "models" / "1"), "--all"], capture_output=True, text=True, check=True).stdout
    assert "signature_def['serving_default']" in out and "signature_def['sample']" in out
    assert "shape: (-1, 1, 11)" in out and f"shape: (-1, {STEPS + 1}, 4, 3)" in out and "shape: (-1, 4, 3)" in out


def _reference_actions(dc, params, state, noise, deterministic):
    """The project's own torch and TF models on the same normalized state and noise, in env units."""
    norm = load_normalization(NORM)
    obs = norm.normalize_obs(state).astype(np.float32)
    th, tf_ = TorchDiffusion(dc), TFDiffusion(dc)
    torch_io.load_state(th, params)
    tf_io.load_state(tf_, params)
    kw = dict(deterministic=deterministic, min_sampling_std=1e-3 if deterministic else 0.1)
    x_th = th.sample(torch.from_numpy(obs), torch.from_numpy(noise), **kw).trajectories.numpy()
    x_tf = tf_.sample(obs, noise, **kw).trajectories.numpy()
    return norm.unnormalize_action(x_th), norm.unnormalize_action(x_tf)


BATCHES, VERSIONS = (1, 64), ("1", "2")


def _requests(batch: int) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray, bool]]:
    """Per signature: the request's inputs, the chain noise it stands for, deterministic or not."""
    rng = np.random.default_rng(batch)
    norm = load_normalization(NORM)
    state = (norm.obs_min + rng.uniform(0, 1, (batch, 1, 11)) * (norm.obs_max - norm.obs_min)).astype(np.float32)
    noise = rng.standard_normal((batch, STEPS + 1, 4, 3)).astype(np.float32)
    return {"serving_default": ({"state": state}, default_noise(batch, PolicyShape(1, 11, 4, 3, 4, STEPS)), True),
            "sample": ({"state": state, "noise": noise}, np.transpose(noise, (1, 0, 2, 3)), False)}


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """Every (version, batch, signature) request answered by one TF-only process (tests/cli/serving_client.py)."""
    tmp, _, _ = exported
    work = tmp_path_factory.mktemp("served")
    argv, outputs = [], {}
    for version in VERSIONS:
        for batch in BATCHES:
            for name, (inputs, _, _) in _requests(batch).items():
                request = work / f"{version}_{batch}_{name}"
                np.savez(f"{request}_in.npz", **inputs)
                argv += [str(tmp / "models" / version), f"{request}_in.npz", f"{request}_out.npz"]
                outputs[(version, batch, name)] = f"{request}_out.npz"
    subprocess.run([sys.executable, CLIENT, *argv], check=True, capture_output=True)
    return {key: dict(np.load(path)) for key, path in outputs.items()}


@pytest.fixture(scope="module")
def references(exported):
    """Per (batch, signature): the torch and TF models' actions for the same request (both versions share them)."""
    _, dc, params = exported
    return {(batch, name): _reference_actions(dc, params, inputs["state"], chain_noise, deterministic)
            for batch in BATCHES for name, (inputs, chain_noise, deterministic) in _requests(batch).items()}


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("version", VERSIONS)
def test_tf_only_process_matches_torch_and_tf_models(served, references, batch, version):
    for name, (_, _, deterministic) in _requests(batch).items():
        served_actions = served[(version, batch, name)]["action" if deterministic else "action_chunk"]
        ref_torch, ref_tf = references[(batch, name)]
        assert served_actions.shape == ((batch, 4, 3))
        assert relative_diff(served_actions, ref_tf) <= SERVING_RTOL, name
        assert relative_diff(served_actions, ref_torch) <= SERVING_RTOL, name


def test_serving_default_gives_a_state_the_same_action_in_any_batch(exported):
    tmp, _, _ = exported
    fn = tf.saved_model.load(str(tmp / "models" / "1")).signatures["serving_default"]
    state = np.random.default_rng(0).uniform(-1, 1, (5, 1, 11)).astype(np.float32)
    one = fn(state=tf.constant(state[:1]))["action"].numpy()
    five = fn(state=tf.constant(state))["action"].numpy()
    np.testing.assert_allclose(five[:1], one, rtol=1e-6, atol=1e-6)


def test_rest_predict_body_from_the_readme_runs_through_the_saved_model(exported):
    tmp, _, _ = exported
    # exactly the request body docs/guide/serving.md shows for POST /v1/models/dppo_hopper:predict
    body = json.loads('{"signature_name": "serving_default", "instances": [{"state": [[1.25, 0.0, -0.1, -0.2, 0.3, '
                      '1.5, -0.2, 0.1, -0.3, 0.6, -1.0]]}]}')
    loaded = tf.saved_model.load(str(tmp / "models" / "1"))
    fn = loaded.signatures[body["signature_name"]]
    state = np.array([inst["state"] for inst in body["instances"]], np.float32)  # row format -> batch
    outputs = fn(state=tf.constant(state))
    response = {"predictions": outputs["action"].numpy().tolist()}  # one named output: rows are its values
    assert len(response["predictions"]) == 1 and np.array(response["predictions"]).shape == (1, 4, 3)
    assert all(np.isfinite(np.array(response["predictions"])).ravel())


@pytest.mark.parametrize("bad", [np.zeros((2, 11), np.float32), np.zeros((2, 1, 7), np.float32),
                                 np.zeros((2, 1, 11), np.float64)])
def test_wrong_input_shape_or_dtype_is_a_clear_error(exported, bad):
    tmp, _, _ = exported
    fn = tf.saved_model.load(str(tmp / "models" / "1")).signatures["serving_default"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)) as err:
        fn(state=tf.constant(bad))
    message = str(err.value)
    expected = "state must be float32 [batch, cond_steps=1, obs_dim=11]"
    assert expected in message or "expected to be a float tensor" in message


def test_existing_version_is_never_overwritten(exported, capsys):
    tmp, _, _ = exported
    assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "models"), "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
