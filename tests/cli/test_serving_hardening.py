"""The exported SavedModel as TF Serving deploys it: batch buckets that leave every real row exactly as
the unpadded chain computes it, a warm-up file TF Serving replays at load, files other users can read,
and inputs refused with a message naming the expected signature (NaN/Inf included)."""

import os
import stat

import numpy as np
import pytest
import tensorflow as tf

from core_tf.runtime.export import bucket_sizes, default_noise
from core_tf.runtime.serving_warmup import WARMUP_FILE, read_warmup_requests
from dppo.cli import main
from dppo.interop.export import build_serving_policy
from shared.checkpoint import Checkpoint, save_checkpoint
from shared.config.loading import load_config
from shared.param_spec import diffusion_mlp_spec, torch_default_init
from shared.settings import read_config

CONFIG = "configs/hopper/pretrain_diffusion_mlp.yaml"
NORM = "data/hopper-medium-v2/normalization.npz"
TINY = ["model.network.mlp_dims=[16,16,16]", "denoising_steps=4", f"normalization_path={NORM}"]
STATE = "state must be float32 [batch, cond_steps=1, obs_dim=11]"
NOISE = "noise must be float32 [batch, S+1=5, horizon_steps=4, action_dim=3]"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny pre-training checkpoint exported (XLA) under umask 022, loaded once, and its in-memory policy."""
    tmp = tmp_path_factory.mktemp("serving")
    cfg = load_config(CONFIG, TINY)
    params = torch_default_init(diffusion_mlp_spec(read_config(cfg).model.network, "network."), 4)
    save_checkpoint(tmp / "c.npz", Checkpoint({"model": params, "ema": params}, {"config": cfg, "kind": "pretrain"}))
    umask = os.umask(0o022)
    try:
        assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "models")]) == 0
    finally:
        os.umask(umask)
    serving, shape = build_serving_policy(str(tmp / "c.npz"))
    signatures = tf.saved_model.load(str(tmp / "models" / "1")).signatures
    return tmp, signatures, serving, shape


def _states(batch, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, (batch, 1, 11)).astype(np.float32)


def _noise(batch, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 5, 4, 3)).astype(np.float32)


def _unpadded(serving, state, noise, deterministic):
    """The signatures' computation without buckets: the in-memory XLA chain called at the batch's own size,
    inside a graph as the signatures are (grappler turns the normalization's division by a constant into a
    multiplication, which rounds differently from eager execution)."""
    chain = serving.deterministic_chain if deterministic else serving.stochastic_chain
    run = tf.function(lambda s, n: serving._env_units(chain(serving._normalized(s), n)))
    return run(tf.constant(state), tf.constant(noise)).numpy()  # noise batch first (B, S+1, Ta, Da)


def test_an_odd_batch_served_in_a_bucket_equals_the_unpadded_chain_exactly(exported):
    _, signatures, serving, shape = exported
    batch = 3  # runs in bucket 4
    state, noise = _states(batch), _noise(batch)
    served = signatures["serving_default"](state=tf.constant(state))["action"].numpy()
    reference = _unpadded(serving, state, np.transpose(default_noise(batch, shape), (1, 0, 2, 3)), True)
    reference = reference[:, : shape.act_steps]
    np.testing.assert_array_equal(served, reference)
    served = signatures["sample"](state=tf.constant(state), noise=tf.constant(noise))["action_chunk"].numpy()
    np.testing.assert_array_equal(served, _unpadded(serving, state, noise, False))


def test_other_rows_in_the_bucket_never_change_a_row(exported):
    _, signatures, _, _ = exported
    state, noise = _states(3), _noise(3)
    full_state = np.concatenate([state, 1e3 * _states(1, seed=7)])  # fills bucket 4 with a far-off row
    full_noise = np.concatenate([noise, 50 * _noise(1, seed=8)])
    three = signatures["sample"](state=tf.constant(state), noise=tf.constant(noise))["action_chunk"].numpy()
    four = signatures["sample"](state=tf.constant(full_state), noise=tf.constant(full_noise))["action_chunk"].numpy()
    np.testing.assert_array_equal(four[:3], three)


def test_batches_beyond_the_largest_bucket_run_in_chunks_with_the_same_rows(exported):
    tmp, _, _, _ = exported
    serving, _ = build_serving_policy(str(tmp / "c.npz"), max_bucket=4)
    state, noise = _states(9), _noise(9)
    chunked = serving.sample(tf.constant(state), tf.constant(noise))["action_chunk"].numpy()  # 3 calls of 4 rows
    assert chunked.shape == (9, 4, 3)
    for lo in (0, 4):  # each chunk alone fills one whole bucket
        alone = serving.sample(tf.constant(state[lo : lo + 4]), tf.constant(noise[lo : lo + 4]))["action_chunk"]
        np.testing.assert_array_equal(chunked[lo : lo + 4], alone.numpy())
    with pytest.raises(ValueError, match="power of two"):
        build_serving_policy(str(tmp / "c.npz"), max_bucket=6)


def test_warmup_file_holds_one_predict_request_per_signature_and_bucket(exported):
    tmp, signatures, _, _ = exported
    model = tmp / "models" / "1"
    first = tf.data.TFRecordDataset(str(model / WARMUP_FILE)).take(1).get_single_element().numpy()
    assert first[0] == (6 << 3) | 2  # PredictionLog.predict_log: field 6, length-delimited (prediction_log.proto)
    requests = read_warmup_requests(model)
    assert [(name, inputs["state"].shape[0]) for name, inputs in requests] == [
        (name, b) for b in bucket_sizes() for name in ("serving_default", "sample")]
    assert all(inputs["noise"].shape == (b, 5, 4, 3) for (name, inputs), b in
               zip(requests[1::2], bucket_sizes(), strict=True))
    for name, inputs in requests[4:6]:  # replayed as TF Serving does at load (bucket 4: compiled above already)
        outputs = signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert all(np.isfinite(v.numpy()).all() for v in outputs.values())



def test_max_bucket_from_the_cli_bounds_the_compiled_buckets_and_their_warm_up(exported, capsys):
    tmp, _, _, _ = exported
    assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "small"), "--max-bucket", "4"]) == 0
    requests = read_warmup_requests(tmp / "small" / "1")
    assert [(name, inputs["state"].shape[0]) for name, inputs in requests] == [
        (name, b) for b in (1, 2, 4) for name in ("serving_default", "sample")]
    served = tf.saved_model.load(str(tmp / "small" / "1")).signatures["serving_default"]
    state = _states(9)
    assert served(state=tf.constant(state))["action"].shape[0] == 9  # past the largest bucket: in chunks of 4
    assert main(["export", "--checkpoint", str(tmp / "c.npz"), "--out", str(tmp / "bad"), "--max-bucket", "6"]) == 2
    err = capsys.readouterr().err
    assert "--max-bucket must be a power of two" in err and "Traceback" not in err and not (tmp / "bad" / "1").exists()


def _modes(root):
    return {p.relative_to(root).as_posix() or ".": stat.S_IMODE(p.stat().st_mode)
            for p in [root, *root.rglob("*")]}


def test_version_directory_is_readable_by_other_users(exported):
    tmp, _, _, _ = exported
    modes = _modes(tmp / "models")
    assert {"1", "1/saved_model.pb", "1/variables", f"1/{WARMUP_FILE}"} <= set(modes)
    assert all(m == (0o755 if (tmp / "models" / p).is_dir() else 0o644) for p, m in modes.items()), modes


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_convert_to_tf_output_gets_the_umask_modes(exported, tmp_path, umask):
    tmp, _, _, _ = exported
    old = os.umask(umask)
    try:
        assert main(["convert", "--checkpoint", str(tmp / "c.npz"), "--to", "tf", "--out", str(tmp_path / "c_tf")]) == 0
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "c_tf")
    assert len(modes) > 2
    assert all(m == (0o777 if (tmp_path / "c_tf" / p).is_dir() else 0o666) & ~umask for p, m in modes.items()), modes


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["state", "noise", "serving_default state"])
def test_nan_or_inf_inputs_are_refused_naming_the_input(exported, bad, where):
    _, signatures, _, _ = exported
    state, noise = _states(3), _noise(3)
    (noise if where == "noise" else state)[1, 0, 2] = bad
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        if where == "serving_default state":
            signatures["serving_default"](state=tf.constant(state))
        else:
            signatures["sample"](state=tf.constant(state), noise=tf.constant(noise))
    name = where.split()[-1]
    assert f"{name} contains NaN or Inf; it must be finite float32 [batch, " in str(err.value)


@pytest.mark.parametrize("shape", [(11,), (2, 11), (2, 1, 7), (2, 2, 11), (2, 1, 11, 1), ()])
def test_wrong_state_shapes_name_the_expected_input(exported, shape):
    _, signatures, _, _ = exported
    for call in (lambda s: signatures["serving_default"](state=s),
                 lambda s: signatures["sample"](state=s, noise=tf.constant(_noise(2)))):
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            call(tf.zeros(shape))
        assert STATE in str(err.value)


@pytest.mark.parametrize("shape", [(2, 5, 4), (2, 4, 4, 3), (2, 5, 4, 3, 1), (2, 5, 3, 4)])
def test_wrong_noise_shapes_name_the_expected_input(exported, shape):
    _, signatures, _, _ = exported
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        signatures["sample"](state=tf.constant(_states(2)), noise=tf.zeros(shape))
    assert NOISE in str(err.value)


def test_noise_with_another_batch_than_state_is_refused(exported):
    _, signatures, _, _ = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="noise must have one row per state row"):
        signatures["sample"](state=tf.constant(_states(3)), noise=tf.constant(_noise(2)))


def test_python_users_load_warm_replaying_the_warm_up_file_as_tf_serving_does(exported, monkeypatch):
    import core_tf.runtime.serving_warmup as warmup_file
    from dppo.interop.export import load_saved_model, warm_up

    tmp, _, _, _ = exported
    model_dir = tmp / "models" / "1"
    requests = read_warmup_requests(model_dir)
    assert len(requests) == 2 * len(bucket_sizes())  # what a full replay runs: both signatures, every bucket
    replayed = []
    # replay the first two buckets only (each compile takes seconds), recording what runs
    monkeypatch.setattr(warmup_file, "read_warmup_requests", lambda d: replayed.extend(requests[:4]) or requests[:4])
    loaded = load_saved_model(model_dir)
    assert [r[0] for r in replayed] == ["serving_default", "sample"] * 2
    assert warm_up(loaded, model_dir) == 4
    state = tf.zeros([2, 1, 11])
    assert loaded.signatures["serving_default"](state=state)["action"].shape == (2, 4, 3)
