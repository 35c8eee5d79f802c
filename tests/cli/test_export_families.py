"""`dppo export` of every network family's policy, from upstream's robomimic Can configs (small networks): the
diffusion UNet, Gaussian and GMM policies (MLP and transformer), pre-training and PPO fine-tuning checkpoints. The
SavedModel's two signatures give the in-memory torch and TF twins' actions on the same noise (a Gaussian's mean, a
GMM's likeliest mode's mean; a stochastic chunk from the caller's noise, a GMM's mode picked by mode_uniform), the
ONNX graphs give the SavedModel's, inputs are checked in the graph, and a checkpoint export cannot serve is refused
in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import torch

import core_tf.runtime.canonical as tf_io
import core_torch.runtime.canonical as torch_io
from core_tf.runtime.export import default_noise
from dppo.algorithms.agents import initial_params
from dppo.cli import main
from dppo.interop.onnx import OnnxPolicy
from shared.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.data.dataset import load_normalization
from shared.param_spec.families import network_init
from shared.serving import PolicyShape
from shared.settings import PretrainConfig, read_config
from shared.tolerances import SERVING_RTOL, relative_diff

ROBOMIMIC = Path("tests/fixtures/upstream_cfg/cfg/robomimic")
NORM = "data/robomimic/can/normalization.npz"
OBS_DIM, ACTION_DIM, HORIZON = 23, 7, 4
MLP = ["mlp_dims=[16,16,16]"]
TRANSFORMER = ["transformer_embed_dim=8", "transformer_num_heads=2", "transformer_num_layers=1"]
UNET = ["dim=8", "dim_mults=[1,2]", "n_groups=4", "diffusion_step_embed_dim=8"]
CHAIN = ["denoising_steps=2"]
# config stem -> (its network section, small-network overrides of it, other overrides)
CASES = {
    "pre_diffusion_unet": ("model.network", UNET, CHAIN),
    "ft_ppo_diffusion_unet": ("model.actor", UNET, CHAIN + ["ft_denoising_steps=1"]),
    "pre_gaussian_mlp": ("model.network", MLP, []),
    "ft_ppo_gaussian_mlp": ("model.actor", MLP, []),
    "pre_gaussian_transformer": ("model.network", TRANSFORMER, []),
    "ft_ppo_gaussian_transformer": ("model.actor", TRANSFORMER, []),
    "pre_gmm_mlp": ("model.network", MLP, []),
    "ft_ppo_gmm_mlp": ("model.actor", MLP, []),
    "pre_gmm_transformer": ("model.network", TRANSFORMER, []),
    "ft_ppo_gmm_transformer": ("model.actor", TRANSFORMER, []),
}
BATCH = 3  # an odd batch: served in XLA bucket 4
XLA = ("pre_gaussian_mlp", "ft_ppo_gmm_mlp")  # the others export --no-xla: each XLA compile costs seconds here
# ONNX: each Gaussian and GMM family once, pre-training and PPO checkpoints of both kinds (the diffusion MLP's:
# tests/cli/test_export_onnx.py)
ONNX = ("pre_gaussian_mlp", "ft_ppo_gaussian_transformer", "ft_ppo_gmm_mlp", "pre_gmm_transformer")
# SavedModel: those four (each kind's pre-training and PPO checkpoint reader, each family once) and the UNet's
# pre-training checkpoint (a DPPO UNet run serves through the DPPO path test_export.py holds for the MLP); the
# other CASES differ from these only in a combination already covered, and each export costs a TF trace here
SAVED = ("pre_diffusion_unet", *ONNX)


def _config(stem: str) -> dict:
    section, network, other = CASES[stem]
    pre = stem.startswith("pre_")
    path = ROBOMIMIC / ("pretrain" if pre else "finetune") / "can" / f"{stem}.yaml"
    small = [f"{section}.{o}" for o in network] + other
    small += [f"normalization_path={NORM}"] if pre else ["base_policy_path=null", "model.critic.mlp_dims=[8,8,8]"]
    return load_config(str(path), small)


def _checkpoint(stem: str, path: Path) -> None:
    """A fresh policy of the config in the layout its run writes: pre-training network.* (model, ema), a
    fine-tuning run's driver weights (actor.*, critic.*; DPPO's base actor and actor_ft)."""
    raw = _config(stem)
    cfg = read_config(raw)
    if stem.startswith("pre_"):
        network = cfg.model.network
        params = network_init(network, 3, "network.")
        # a little spread in the mixture logits and stds, so modes and noise matter
        params = {k: v + np.float32(0.05) * np.random.default_rng(7).standard_normal(v.shape).astype(np.float32)
                  for k, v in params.items()}
        groups, kind = {"model": params, "ema": params}, "pretrain"
    else:
        groups, kind = {"model": initial_params(cfg)}, "finetune"
    save_checkpoint(path, Checkpoint(groups, {"config": raw, "kind": kind}))


@pytest.fixture(scope="module")
def monkeypatch_module(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DPPO_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
        yield mp


@pytest.fixture(scope="module")
def exports(tmp_path_factory, monkeypatch_module):
    """export(stem, fmt) -> the export's directory: one checkpoint per case, exported once per format (the
    SavedModel with XLA buckets and the warm-up file for the XLA cases)."""
    done: dict[tuple[str, str], Path] = {}

    def export(stem: str, fmt: str) -> Path:
        tmp = tmp_path_factory.getbasetemp() / f"export_{stem}"
        if not (tmp / "c.npz").exists():
            tmp.mkdir(exist_ok=True)
            _checkpoint(stem, tmp / "c.npz")
        if (stem, fmt) not in done:
            xla = [] if fmt == "onnx" or stem in XLA else ["--no-xla"]
            assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / fmt), "--format", fmt,
                         "--normalization", NORM, "--act-steps", "2", *xla]) == 0
            done[(stem, fmt)] = tmp / fmt / "1"
        return done[(stem, fmt)]

    return export


def _requests(kind: str, batch: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Raw states across the normalization range and the sample signature's noise inputs for the kind."""
    rng = np.random.default_rng(seed)
    norm = load_normalization(NORM)
    state = (norm.obs_min + rng.uniform(0, 1, (batch, 1, OBS_DIM)) * (norm.obs_max - norm.obs_min)).astype(np.float32)
    steps = {"diffusion": [3], "gaussian": [], "gmm": []}[kind]  # a diffusion chain's S+1
    noise = {"noise": rng.standard_normal((batch, *steps, HORIZON, ACTION_DIM)).astype(np.float32)}
    if kind == "gmm":
        noise["mode_uniform"] = rng.uniform(0, 1, batch).astype(np.float32)
    return state, noise


def _twins_actions(stem: str, ckpt: Path, obs: np.ndarray, noise: dict[str, np.ndarray], deterministic: bool):
    """The torch and TF twins' chunks (B, Ta, Da) in [-1, 1] for normalized obs, written here from the networks'
    outputs: a diffusion chain of the family's DiffusionModel / PPODiffusionModel, a Gaussian's mean (+ std *
    clipped noise), a GMM's likeliest mode's mean (or the mode whose cumulative weight first exceeds u)."""
    saved = load_checkpoint(ckpt)
    cfg, pre = read_config(saved.meta["config"]), stem.startswith("pre_")
    if "diffusion" in stem:  # a pre-training checkpoint's EMA weights, as upstream's DiffusionModel loads
        weights = saved.group("ema" if pre else "model")
        return [_chain(backend, cfg, weights, obs, noise["noise"], deterministic) for backend in ("torch", "tf")]
    prefix = "network." if pre else "actor."  # `model`, as upstream's GaussianModel and GMMModel load
    network_cfg = cfg.model.network if pre else cfg.gaussian_actor
    own = {k[len(prefix):]: v for k, v in saved.group("model").items() if k.startswith(prefix)}
    out = []
    for backend in ("torch", "tf"):
        if backend == "torch":
            from core_torch.networks.registry import build_network

            net = build_network(network_cfg).eval()
            torch_io.load_state(net, own)
            with torch.no_grad():
                heads = [t.numpy() for t in net(torch.from_numpy(obs))]
        else:
            from core_tf.networks.registry import build_network

            net = build_network(network_cfg)
            tf_io.load_state(net, own)
            heads = [t.numpy() for t in net(tf.constant(obs))]
        out.append(_policy_math(heads, noise, deterministic, getattr(cfg.model, "randn_clip_value", None)))
    return out


def _policy_math(heads, noise, deterministic, clip):
    b = len(heads[0])
    if len(heads) == 2:  # Gaussian: mean, std (B, Ta * Da)
        mean, std = heads
        x = mean if deterministic else mean + std * np.clip(noise["noise"].reshape(b, -1), -clip, clip)
    else:  # GMM: means, stds (B, M, Ta * Da), logits (B, M)
        means, stds, logits = heads
        if deterministic:
            k = logits.argmax(-1)
            x = means[np.arange(b), k]
        else:
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            cdf = np.cumsum(weights / weights.sum(-1, keepdims=True), -1)
            k = np.minimum((cdf <= noise["mode_uniform"][:, None]).sum(-1), logits.shape[-1] - 1)
            x = means[np.arange(b), k] + stds[np.arange(b), k] * noise["noise"].reshape(b, -1)
    return x.reshape(b, HORIZON, ACTION_DIM)


def _chain(backend: str, cfg, weights, obs, noise_bf, deterministic):
    """A diffusion twin's reverse chain on noise (B, S+1, Ta, Da)."""
    noise = np.ascontiguousarray(np.transpose(noise_bf, (1, 0, 2, 3)))
    io = torch_io if backend == "torch" else tf_io
    if isinstance(cfg, PretrainConfig):
        if backend == "torch":
            from core_torch.diffusion.model import DiffusionModel
        else:
            from core_tf.diffusion.model import DiffusionModel
        model = DiffusionModel(cfg.model)
        io.load_state(model, {k: v for k, v in weights.items() if k.startswith("network.")})
        args = (torch.from_numpy(obs), torch.from_numpy(noise)) if backend == "torch" else (obs, noise)
        with torch.no_grad():
            x = model.sample(*args, deterministic=deterministic, min_sampling_std=0.1).trajectories
        return x.numpy()
    if backend == "torch":
        from core_torch.algorithms.ppo_diffusion import PPODiffusionModel
    else:
        from core_tf.algorithms.ppo_diffusion import PPODiffusionModel
    model = PPODiffusionModel(cfg.diffusion, cfg.critic, cfg.dppo)
    io.load_state(model, weights)
    args = (torch.from_numpy(obs), torch.from_numpy(noise)) if backend == "torch" else (obs, noise)
    with torch.no_grad():
        return model.sample(*args, deterministic)[0].numpy()


def _kind(stem: str) -> str:
    return "diffusion" if "diffusion" in stem else "gmm" if "gmm" in stem else "gaussian"


def _deterministic_noise(kind: str, batch: int) -> dict[str, np.ndarray]:
    """What serving_default draws itself (a diffusion chain's stateless noise, batch first); nothing otherwise."""
    if kind != "diffusion":
        return {}
    shape = PolicyShape(1, OBS_DIM, HORIZON, ACTION_DIM, 2, 2)
    return {"noise": np.transpose(default_noise(batch, shape), (1, 0, 2, 3))}


@pytest.mark.parametrize("stem", SAVED)
def test_saved_model_serves_the_torch_and_tf_twins_actions(exports, stem):
    model = exports(stem, "savedmodel")
    signatures = tf.saved_model.load(str(model)).signatures
    kind = _kind(stem)
    norm = load_normalization(NORM)
    state, noise = _requests(kind, BATCH, 0)
    obs = norm.normalize_obs(state).astype(np.float32)
    served = {"serving_default": signatures["serving_default"](state=tf.constant(state))["action"].numpy(),
              "sample": signatures["sample"](state=tf.constant(state), **{k: tf.constant(v) for k, v in
                                                                          noise.items()})["action_chunk"].numpy()}
    assert served["serving_default"].shape == (BATCH, 2, ACTION_DIM)
    assert served["sample"].shape == (BATCH, HORIZON, ACTION_DIM)
    for name, deterministic, inputs in (("serving_default", True, _deterministic_noise(kind, BATCH)),
                                        ("sample", False, noise)):
        for twin in _twins_actions(stem, model.parent.parent / "c.npz", obs, inputs, deterministic):
            reference = norm.unnormalize_action(twin)[:, : 2 if deterministic else HORIZON]
            assert relative_diff(served[name], reference) <= SERVING_RTOL, (stem, name)
    if kind == "gmm":  # the mode the caller's uniform picks matters: another one gives another chunk
        other = dict(noise, mode_uniform=1.0 - noise["mode_uniform"])
        moved = signatures["sample"](state=tf.constant(state), **{k: tf.constant(v) for k, v in other.items()})
        assert not np.allclose(moved["action_chunk"].numpy(), served["sample"])


@pytest.mark.parametrize("stem", ONNX)
def test_onnx_graphs_give_the_saved_models_actions(exports, stem):
    signatures = tf.saved_model.load(str(exports(stem, "savedmodel"))).signatures
    signature = json.loads((exports(stem, "onnx") / "signature.json").read_text())
    kind = _kind(stem)
    onnx = OnnxPolicy(exports(stem, "onnx"))
    assert signature["kind"] == kind
    state, noise = _requests(kind, 5, 1)
    served = signatures["serving_default"](state=tf.constant(state))["action"].numpy()
    assert relative_diff(onnx.run("deterministic", state, **_deterministic_noise(kind, 5)), served) <= SERVING_RTOL
    sampled = signatures["sample"](state=tf.constant(state), **{k: tf.constant(v) for k, v in noise.items()})
    assert relative_diff(onnx.run("sample", state, **noise), sampled["action_chunk"].numpy()) <= SERVING_RTOL
    assert signature["graph_inputs"]["sample.onnx"] == ["state", *noise]


@pytest.mark.parametrize("stem", ["pre_gaussian_mlp", "ft_ppo_gmm_mlp"])
def test_inputs_are_checked_in_the_graph_with_one_message(exports, stem):
    signatures = tf.saved_model.load(str(exports(stem, "savedmodel"))).signatures
    kind = _kind(stem)  # the diffusion signatures' checks: tests/cli/test_serving_hardening.py
    state, noise = _requests(kind, 2, 2)
    bad = {"noise": np.zeros((2, HORIZON * ACTION_DIM), np.float32)}
    expected = {"noise": f"noise must be float32 [batch, horizon_steps={HORIZON}, action_dim={ACTION_DIM}]"}
    if kind == "gmm":
        bad["mode_uniform"] = np.array([0.5, 1.5], np.float32)
        expected["mode_uniform"] = "mode_uniform must lie in [0, 1]"
    for name, value in bad.items():
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            signatures["sample"](state=tf.constant(state), **{k: tf.constant(v) for k, v in
                                                              dict(noise, **{name: value}).items()})
        assert expected[name] in str(err.value)
    with pytest.raises(tf.errors.InvalidArgumentError, match="state must be float32 \\[batch, cond_steps=1"):
        signatures["serving_default"](state=tf.zeros([2, OBS_DIM]))


def _one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_a_checkpoint_export_cannot_serve_is_refused_in_one_line(tmp_path, capsys, monkeypatch_module):
    # a GMM policy's config over a Gaussian policy's weights: the network does not fit
    _checkpoint("pre_gaussian_mlp", tmp_path / "gaussian.npz")
    ckpt = load_checkpoint(tmp_path / "gaussian.npz")
    save_checkpoint(tmp_path / "foreign.npz", Checkpoint(ckpt.groups, {"config": _config("pre_gmm_mlp"),
                                                                        "kind": "pretrain"}))
    line = _one_line_error(["export", "--checkpoint", str(tmp_path / "foreign.npz"), "--out", str(tmp_path / "m")],
                           capsys)
    assert "the policy network: missing tensor" in line
    # an off-policy Gaussian actor (Cal-QL): not served, and said so
    raw = load_config(str(ROBOMIMIC / "finetune" / "can" / "calql_mlp_online.yaml"), ["base_policy_path=null"])
    save_checkpoint(tmp_path / "calql.npz", Checkpoint({"model": {}}, {"config": raw, "kind": "finetune"}))
    line = _one_line_error(["export", "--checkpoint", str(tmp_path / "calql.npz"), "--out", str(tmp_path / "m"),
                            "--format", "onnx"], capsys)
    assert "off-policy Gaussian actors are not exported yet" in line


def test_warm_up_file_holds_each_bucket_with_the_kinds_inputs(exports):
    from core_tf.runtime.export import bucket_sizes
    from core_tf.runtime.serving_warmup import read_warmup_requests
    from dppo.interop.export import warm_up

    model = exports("ft_ppo_gmm_mlp", "savedmodel")  # XLA
    requests = read_warmup_requests(model)
    assert [(name, sorted(inputs), inputs["state"].shape[0]) for name, inputs in requests] == [
        (name, keys, b) for b in bucket_sizes()
        for name, keys in (("serving_default", ["state"]), ("sample", ["mode_uniform", "noise", "state"]))]
    loaded = tf.saved_model.load(str(model))
    with pytest.MonkeyPatch.context() as mp:  # replay buckets 1 and 2 only (each compile takes a while)
        mp.setattr("core_tf.runtime.serving_warmup.read_warmup_requests", lambda d: requests[:4])
        assert warm_up(loaded, model) == 4
