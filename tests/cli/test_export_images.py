"""`dppo export` of image policies (upstream's robomimic *_img configs, small networks): the SavedModel's signatures
take the raw state float32 and the camera frames `rgb` uint8 [B, img_cond_steps, 3 num_img, H, W]; a process that
imports only TensorFlow gets the in-memory torch and TF twins' actions on the same noise (batch 1 and 3: bucket 4
pads state and frames); frames of another dtype or shape, and a NaN state, are refused with one message each; the
warm-up file holds frames for every bucket; the REST body of docs/guide/serving.md runs, and its gRPC PredictRequest
(tensorflow-serving-api), serialized and parsed in the TF-only process, gets the twins' actions too."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import torch
from tensorflow_serving.apis import predict_pb2

import core_tf.runtime.canonical as tf_io
import core_torch.runtime.canonical as torch_io
from core_tf.runtime.export import bucket_sizes, default_noise
from core_tf.runtime.serving_warmup import read_warmup_requests
from dppo.algorithms.agents import initial_params
from dppo.cli import main
from shared.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.data.dataset import Normalization, load_normalization
from shared.param_spec.families import network_init
from shared.serving import PolicyShape
from shared.settings import read_config
from shared.tolerances import SERVING_RTOL, relative_diff

ROBOMIMIC = Path("tests/fixtures/upstream_cfg/cfg/robomimic")
CLIENT = "tests/cli/serving_client.py"


def _vit(section: str) -> list[str]:
    return [f"{section}.backbone.cfg.embed_dim=16", f"{section}.backbone.cfg.num_heads=2", f"{section}.spatial_emb=8"]


# case -> (task, config stem, overrides, XLA export): lift has one camera (obs_dim 9, action_dim 7), transport
# two (obs_dim 18, action_dim 14, horizon 8; rgb channels 6); the DPPO run serves its base actor and actor_ft
# (DDIM, 2 steps). The pre-training chain has 10 DDPM steps: with 3, x0's first estimate divides by a
# sqrt(alpha_bar) near 0 and the torch and TF twins themselves differ by 1.1e-5 on a stochastic chain (the
# SavedModel stays within 3e-7 of the TF twin either way); with 10 all differences are at most 1.8e-6. Only the
# Gaussian exports with XLA (the bucket padding is the same for every kind; each compile costs seconds here)
CASES = {
    "pre_diffusion_mlp_img": ("lift", "pre_diffusion_mlp_img", [
        *_vit("model.network"), "model.network.mlp_dims=[16,16,16]", "model.network.time_dim=8",
        "denoising_steps=10"], False),
    "pre_gaussian_mlp_img": ("transport", "pre_gaussian_mlp_img", [
        *_vit("model.network"), "model.network.mlp_dims=[16,16,16]"], True),
    "ft_ppo_diffusion_mlp_img": ("lift", "ft_ppo_diffusion_mlp_img", [
        *_vit("model.actor"), *_vit("model.critic"), "model.actor.mlp_dims=[16,16,16]", "model.actor.time_dim=8",
        "model.critic.mlp_dims=[8,8,8]", "denoising_steps=4", "ft_denoising_steps=2", "base_policy_path=null"], False),
}
BATCHES = (1, 3)  # 3: served in XLA bucket 4 (the Gaussian's export), frames padded too
RGB = "rgb must be uint8 [batch, img_cond_steps=1, 3*num_img=3, img_h=96, img_w=96]"


def _setup(case: str, tmp: Path) -> dict:
    """The case's checkpoint (a fresh policy in the layout its run writes) and a normalization of its dims."""
    task, stem, overrides, _ = CASES[case]
    pre = stem.startswith("pre_")
    path = ROBOMIMIC / ("pretrain" if pre else "finetune") / task / f"{stem}.yaml"
    raw = load_config(str(path), [*overrides, f"normalization_path={tmp / 'normalization.npz'}"])
    cfg = read_config(raw)
    obs_dim, action_dim = raw["obs_dim"], raw["action_dim"]
    rng = np.random.default_rng(len(case))
    Normalization.from_data(rng.standard_normal((50, obs_dim)) * 2.0, rng.uniform(-1, 1, (50, action_dim))
                            ).save(tmp / "normalization.npz")
    if pre:
        params = network_init(cfg.model.network, 3, "network.")
        groups, kind = {"model": params, "ema": params}, "pretrain"
    else:
        groups, kind = {"model": initial_params(cfg)}, "finetune"
    save_checkpoint(tmp / "c.npz", Checkpoint(groups, {"config": raw, "kind": kind}))
    return {"cfg": cfg, "norm": tmp / "normalization.npz", "obs_dim": obs_dim, "action_dim": action_dim,
            "horizon": raw["horizon_steps"], "cams": 2 if task == "transport" else 1,
            "steps": 0 if "gaussian" in stem else raw["denoising_steps" if pre else "ft_denoising_steps"]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """case -> (its SavedModel version directory, what _setup returned), each made by `dppo export`."""
    out = {}
    for case, (*_, xla) in CASES.items():
        tmp = tmp_path_factory.mktemp(case)
        info = _setup(case, tmp)
        assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "models"), "--normalization",
                     str(tmp / "normalization.npz"), *([] if xla else ["--no-xla"])]) == 0
        out[case] = (tmp / "models" / "1", info)
        _INFO[str(info["norm"])] = info
    return out


_INFO: dict[str, dict] = {}  # normalization path -> the case's _setup (the key _twin caches its models under)


@pytest.fixture(scope="module")
def loaded(exported) -> dict:
    """case -> its SavedModel's signatures, loaded once in this process."""
    return {case: tf.saved_model.load(str(model)).signatures for case, (model, _) in exported.items()}


def _requests(info: dict, batch: int) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray | None, bool]]:
    """Per signature: the request's inputs (raw state across the normalization range, random frames), the chain
    or Gaussian noise it stands for, deterministic or not."""
    rng = np.random.default_rng(batch)
    norm = load_normalization(str(info["norm"]))
    state = (norm.obs_min + rng.uniform(0, 1, (batch, 1, info["obs_dim"])) * (norm.obs_max - norm.obs_min))
    obs = {"state": state.astype(np.float32),
           "rgb": rng.integers(0, 256, (batch, 1, 3 * info["cams"], 96, 96), dtype=np.uint8)}
    steps = [info["steps"] + 1] if info["steps"] else []  # a diffusion chain's S+1
    chunk = (info["horizon"], info["action_dim"])
    noise = rng.standard_normal((batch, *steps, *chunk)).astype(np.float32)
    default = None
    if steps:
        shape = PolicyShape(1, info["obs_dim"], *chunk, info["horizon"], info["steps"])
        default = np.transpose(default_noise(batch, shape), (1, 0, 2, 3))  # batch first, as `noise`
    return {"serving_default": (obs, default, True), "sample": ({**obs, "noise": noise}, noise, False)}


@functools.cache
def _twin(case: str, backend: str, info_key: str) -> object:
    """The case's in-memory policy of one backend with the checkpoint's weights: a DiffusionModel (EMA weights,
    as upstream loads), a PPODiffusionModel (base actor and actor_ft) or the Gaussian image network."""
    info = _INFO[info_key]
    weights = load_checkpoint(info["norm"].parent / "c.npz").groups
    torch_side = backend == "torch"
    io, cfg = torch_io if torch_side else tf_io, info["cfg"]
    if case == "pre_diffusion_mlp_img":
        from core_tf.diffusion.model import DiffusionModel as TFDiffusion
        from core_torch.diffusion.model import DiffusionModel as TorchDiffusion

        model = (TorchDiffusion if torch_side else TFDiffusion)(cfg.model)
        io.load_state(model, {k: v for k, v in weights["ema"].items() if k.startswith("network.")})
    elif case == "ft_ppo_diffusion_mlp_img":
        from core_tf.algorithms.ppo_diffusion import PPODiffusionModel as TfPPO
        from core_torch.algorithms.ppo_diffusion import PPODiffusionModel as TorchPPO

        model = (TorchPPO if torch_side else TfPPO)(cfg.diffusion, cfg.critic, cfg.dppo)
        io.load_state(model, weights["model"])
    else:
        from core_tf.networks.registry import build_network as tf_build
        from core_torch.networks.registry import build_network as torch_build

        model = (torch_build if torch_side else tf_build)(cfg.model.network)
        io.load_state(model, {k[len("network."):]: v for k, v in weights["model"].items()})
    return model.eval() if torch_side else model


def _twins_actions(case: str, info: dict, obs: tuple[np.ndarray, np.ndarray],
                   noise: np.ndarray | None, deterministic: bool) -> list[np.ndarray]:
    """The torch and TF twins' chunks (B, Ta, Da) in [-1, 1] for (normalized state, rgb): a diffusion chain on the
    noise (batch first here, (S+1, B, Ta, Da) for the twins), or a Gaussian's mean (+ std * clipped noise)."""
    out = []
    for backend in ("torch", "tf"):
        model = _twin(case, backend, str(info["norm"]))
        as_input = torch.from_numpy if backend == "torch" else tf.constant
        cond = tuple(as_input(a) for a in obs)
        with torch.no_grad():
            if case == "pre_gaussian_mlp_img":
                mean, std = (np.asarray(t) for t in model(*cond))  # (B, Ta * Da) each
                c, b = info["cfg"].model.randn_clip_value, len(mean)
                x = mean if deterministic else mean + std * np.clip(noise.reshape(b, -1), -c, c)
                out.append(x.reshape(b, info["horizon"], info["action_dim"]))
                continue
            chain = as_input(np.ascontiguousarray(np.transpose(noise, (1, 0, 2, 3))))
            if case == "pre_diffusion_mlp_img":
                x = model.sample(cond, chain, deterministic=deterministic, min_sampling_std=0.1).trajectories
            else:
                x = model.sample(cond, chain, deterministic)[0]
        out.append(np.asarray(x))
    return out


def predict_request(signature: str, state: np.ndarray, rgb: np.ndarray,
                    noise: np.ndarray | None = None) -> predict_pb2.PredictRequest:
    """docs/guide/serving.md's gRPC request of an image policy, line for line: state float32 (B, To, Do), rgb uint8
    (B, img_cond_steps, 3 num_img, H, W), for `sample` the noise float32 (tf.make_tensor_proto keeps each dtype)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "dppo_lift_img"
    request.model_spec.signature_name = signature
    request.inputs["state"].CopyFrom(tf.make_tensor_proto(state))  # float32 (B, To, Do)
    request.inputs["rgb"].CopyFrom(tf.make_tensor_proto(rgb))  # uint8 (B, img_cond_steps, 3 num_img, 96, 96)
    if noise is not None:  # the `sample` signature
        request.inputs["noise"].CopyFrom(tf.make_tensor_proto(noise))
    return request


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory) -> dict:
    """Every (case, batch, signature) request answered by one process importing only TensorFlow
    (tests/cli/serving_client.py), as one TF Serving process answers many: (route, case, batch, signature) ->
    outputs, route "npz" (the inputs as arrays) or "grpc" (a serialized PredictRequest, the outputs decoded from
    the serialized PredictResponse with tf.make_ndarray, as the docs' client does)."""
    work = tmp_path_factory.mktemp("served")
    argv, outputs = [], {}
    for case, (model, info) in exported.items():
        for batch in BATCHES:
            for name, (inputs, _, _) in _requests(info, batch).items():
                request = work / f"{case}_{batch}_{name}"
                np.savez(f"{request}_in.npz", **inputs)
                Path(f"{request}_in.pb").write_bytes(predict_request(name, **inputs).SerializeToString())
                for route, ext in (("npz", "npz"), ("grpc", "pb")):
                    argv += [str(model), f"{request}_in.{ext}", f"{request}_out.{ext}"]
                    outputs[(route, case, batch, name)] = f"{request}_out.{ext}"
    subprocess.run([sys.executable, CLIENT, *argv], check=True, capture_output=True)
    answers = {}
    for key, path in outputs.items():
        if key[0] == "npz":
            answers[key] = dict(np.load(path))
        else:
            response = predict_pb2.PredictResponse.FromString(Path(path).read_bytes())
            answers[key] = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    return answers


@pytest.mark.parametrize("case", CASES)
def test_tf_only_process_serves_the_torch_and_tf_twins_actions(exported, served, case):
    model, info = exported[case]
    norm = load_normalization(str(info["norm"]))
    for batch in BATCHES:
        for name, (inputs, noise, deterministic) in _requests(info, batch).items():
            output = "action" if deterministic else "action_chunk"
            actions = served[("npz", case, batch, name)][output]
            assert actions.shape == (batch, info["horizon"], info["action_dim"]), (case, batch, name)
            grpc = served[("grpc", case, batch, name)]
            assert list(grpc) == [output] and grpc[output].dtype == np.float32
            obs = (norm.normalize_obs(inputs["state"]).astype(np.float32), inputs["rgb"])
            for twin in _twins_actions(case, info, obs, noise, deterministic):
                reference = norm.unnormalize_action(twin)
                assert relative_diff(actions, reference) <= SERVING_RTOL, (case, batch, name)
                assert relative_diff(grpc[output], reference) <= SERVING_RTOL, (case, batch, name, "grpc")


@pytest.mark.parametrize("case", CASES)
def test_signatures_take_float_state_and_uint8_frames(exported, loaded, case):
    _, info = exported[case]
    signatures = loaded[case]
    frames = (None, 1, 3 * info["cams"], 96, 96)
    for name in ("serving_default", "sample"):
        specs = signatures[name].structured_input_signature[1]
        assert specs["state"].dtype == tf.float32 and tuple(specs["state"].shape) == (None, 1, info["obs_dim"])
        assert specs["rgb"].dtype == tf.uint8 and tuple(specs["rgb"].shape) == frames


def test_frames_of_another_dtype_or_shape_and_a_nan_state_are_refused_with_one_message(exported, loaded):
    _, info = exported["pre_diffusion_mlp_img"]
    fn = loaded["pre_diffusion_mlp_img"]["serving_default"]
    inputs, _, _ = _requests(info, 3)["serving_default"]
    state, rgb = inputs["state"], inputs["rgb"]
    # the dtype is the signature's: TF refuses another before the graph runs, with its own message
    with pytest.raises(tf.errors.InvalidArgumentError, match="was expected to be a uint8 tensor but is a float"):
        fn(state=tf.constant(state), rgb=tf.constant(rgb.astype(np.float32)))
    for bad, message in ((rgb[:, :, :, :64], f"{RGB}; got shape] [3 1 3 64 96]"),  # another size
                         (rgb[:, 0], f"{RGB}; got shape] [3 3 96 96]"),  # no frame-history axis
                         (rgb[:2], "rgb must have one row per state row; got rgb rows, state rows] [2] [3]")):
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            fn(state=tf.constant(state), rgb=tf.constant(bad))
        assert message in str(err.value)
    nan_state = state.copy()
    nan_state[1, 0, 2] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="state contains NaN or Inf; it must be finite float32"):
        fn(state=tf.constant(nan_state), rgb=tf.constant(rgb))


def test_warm_up_file_holds_black_frames_for_every_bucket(exported):
    model, _ = exported["pre_gaussian_mlp_img"]  # the XLA export (two cameras)
    requests = read_warmup_requests(model)
    assert [(name, sorted(inputs), inputs["state"].shape[0]) for name, inputs in requests] == [
        (name, keys, b) for b in bucket_sizes()
        for name, keys in (("serving_default", ["rgb", "state"]), ("sample", ["noise", "rgb", "state"]))]
    for _, inputs in requests:
        rgb = inputs["rgb"]
        assert rgb.dtype == np.uint8 and rgb.shape == (len(inputs["state"]), 1, 6, 96, 96) and not rgb.any()


def test_rest_body_of_the_docs_runs_through_the_saved_model(exported, loaded):
    _, info = exported["pre_diffusion_mlp_img"]
    fn = loaded["pre_diffusion_mlp_img"]["serving_default"]
    inputs, _, _ = _requests(info, 1)["serving_default"]
    state, rgb = inputs["state"], inputs["rgb"]
    # REST, row format, as docs/guide/serving.md builds it: one instance per row, the frames a nested list
    body = json.dumps({"signature_name": "serving_default",
                       "instances": [{"state": state[0].tolist(), "rgb": rgb[0].tolist()}]})
    instances = json.loads(body)["instances"]  # TF Serving converts each to the signature's dtype
    rest = fn(state=tf.constant([i["state"] for i in instances], tf.float32),
              rgb=tf.constant([i["rgb"] for i in instances], tf.uint8))["action"].numpy()
    direct = fn(state=tf.constant(state), rgb=tf.constant(rgb))["action"].numpy()
    np.testing.assert_array_equal(rest, direct)
    # the gRPC request of the docs keeps the frames uint8 (packed as raw bytes) and the state float32
    request = predict_pb2.PredictRequest.FromString(predict_request("serving_default", state, rgb).SerializeToString())
    frames = request.inputs["rgb"]
    assert frames.dtype == tf.uint8.as_datatype_enum and len(frames.tensor_content) == rgb.size
    assert request.inputs["state"].dtype == tf.float32.as_datatype_enum


def test_onnx_export_of_an_image_policy_is_refused_in_one_line(exported, capsys):
    model, info = exported["pre_diffusion_mlp_img"]
    ckpt = model.parent.parent / "c.npz"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(ckpt.parent / "onnx"), "--format", "onnx",
                 "--normalization", str(info["norm"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an image policy (camera frames): ONNX export serves state policies only" in err[0]
    assert not (ckpt.parent / "onnx").exists()


def test_main_jobs_check_of_a_gaussian_ppo_image_export(tmp_path):
    """A Gaussian PPO image run's actor (ft_ppo_gaussian_mlp_img) exports, and check_saved_model (what the main job
    runs after its export) compares it with the in-memory model on random frames."""
    from dppo.interop.export import check_saved_model

    raw = load_config(str(ROBOMIMIC / "finetune" / "lift" / "ft_ppo_gaussian_mlp_img.yaml"), [
        *_vit("model.actor"), *_vit("model.critic"), "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[8,8,8]",
        "base_policy_path=null", f"normalization_path={tmp_path / 'normalization.npz'}"])
    rng = np.random.default_rng(0)
    norm = Normalization.from_data(rng.standard_normal((50, 9)), rng.uniform(-1, 1, (50, 7)))
    norm.save(tmp_path / "normalization.npz")
    save_checkpoint(tmp_path / "c.npz", Checkpoint({"model": initial_params(read_config(raw))},
                                                   {"config": raw, "kind": "finetune"}))
    assert main(["export", "--checkpoint", str(tmp_path / "c.npz"), "--out", str(tmp_path / "m"), "--no-xla"]) == 0
    assert check_saved_model(tmp_path / "m" / "1", str(tmp_path / "c.npz"), num_states=3) <= SERVING_RTOL


def test_served_inputs_describe_the_frames_and_refuse_other_dtypes():
    from shared.serving import ImageShape, ServedInput

    rgb = ImageShape(img_cond_steps=2, num_img=2, img_h=84, img_w=96).rgb_input
    assert rgb.describe() == "uint8 [batch, img_cond_steps=2, 3*num_img=6, img_h=84, img_w=96]"
    assert rgb.trailing == [2, 6, 84, 96] and not rgb.checks_finite
    with pytest.raises(ValueError, match="dtype 'float64' is not one of float32, uint8"):
        ServedInput("state", (), dtype="float64")
    with pytest.raises(ValueError, match="only a float32 input can be a uniform draw"):
        ServedInput("u", (), unit_interval=True, dtype="uint8")
