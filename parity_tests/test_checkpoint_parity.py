"""A checkpoint saved by one framework loads in the other and gives equal outputs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
from hypothesis import given

import core_tf.canonical as tf_io
import core_torch.canonical as torch_io
from core_tf.diffusion import DiffusionModel as TFDiffusion
from core_torch.diffusion import DiffusionModel as TorchDiffusion
from dppo.checkpoints import read_checkpoint, write_checkpoint
from parity_tests import strategies as s
from parity_tests.twins import twin_pair
from shared.checkpoint import Checkpoint
from shared.tolerances import SERVING_RTOL, relative_diff


def _outputs(model, state, noise, to):
    return np.asarray(model.sample(to(state), to(noise), return_chain=True).chains)


@pytest.mark.parametrize("fmt", ["canonical", "torch", "tf"])
@given(cfg=s.diffusion_configs(), seed=s.seeds)
def test_torch_saved_checkpoint_loads_in_tf_and_back_with_equal_outputs(tmp_path_factory, fmt, cfg, seed):
    tmp = tmp_path_factory.mktemp("ckpt")
    rng = np.random.default_rng(seed)
    th_src, _, _ = twin_pair(cfg, seed)
    state = s.bounded_floats(rng, (3, cfg.cond_steps, cfg.obs_dim))
    steps = cfg.ddim_steps if cfg.use_ddim else cfg.denoising_steps
    noise = rng.standard_normal((steps + 1, 3, cfg.horizon_steps, cfg.action_dim)).astype(np.float32)

    # torch -> file -> tf
    suffix = {"canonical": "a.npz", "torch": "a.pt", "tf": "a_tf"}[fmt]
    write_checkpoint(tmp / suffix, Checkpoint({"model": torch_io.export_state(th_src)}, {"step": 7}), fmt)
    tf_model = TFDiffusion(cfg)
    loaded = read_checkpoint(tmp / suffix)
    assert loaded.meta["step"] == 7
    tf_io.load_state(tf_model, loaded.group("model"))
    ref = _outputs(th_src, state, noise, torch.from_numpy)
    # float32 files between frameworks (the twins' float64 agreement is the other tests' job)
    assert relative_diff(_outputs(tf_model, state, noise, tf.constant), ref) <= SERVING_RTOL

    # tf -> file -> torch: bit-identical parameters, identical outputs
    back = {"canonical": "b.npz", "torch": "b.pt", "tf": "b_tf"}[fmt]
    write_checkpoint(tmp / back, Checkpoint({"model": tf_io.export_state(tf_model)}, {}), fmt)
    th_back = TorchDiffusion(cfg)
    torch_io.load_state(th_back, read_checkpoint(tmp / back).group("model"))
    for name, p in th_back.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), dict(th_src.named_parameters())[name].detach().numpy())
    np.testing.assert_array_equal(_outputs(th_back, state, noise, torch.from_numpy), ref)
