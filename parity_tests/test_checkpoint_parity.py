"""A checkpoint saved by one framework loads in the other and gives equal outputs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import torch
from hypothesis import given

import core_tf.runtime.canonical as tf_io
import core_torch.runtime.canonical as torch_io
from core_tf.diffusion.model import DiffusionModel as TFDiffusion
from core_torch.diffusion.model import DiffusionModel as TorchDiffusion
from dppo.checkpoints.formats import read_checkpoint, write_checkpoint
from parity_tests import strategies as s
from parity_tests.twins import twin_pair
from shared.checkpoint import Checkpoint
from shared.tolerances import SERVING_RTOL, relative_diff


def _outputs(model, state, noise, to):
    return np.asarray(model.sample(to(state), to(noise), return_chain=True).chains)


@given(cfg=s.diffusion_configs(), seed=s.seeds)
def test_torch_saved_checkpoint_loads_in_tf_and_back_with_equal_outputs(tmp_path_factory, cfg, seed):
    """Each drawn model through every file format (canonical .npz, torch .pt, TF checkpoint); one TF model
    takes every format's weights in turn, so its sampler compiles once per drawn model."""
    tmp = tmp_path_factory.mktemp("ckpt")
    rng = np.random.default_rng(seed)
    th_src, _, _ = twin_pair(cfg, seed)
    state = s.bounded_floats(rng, (3, cfg.cond_steps, cfg.obs_dim))
    steps = cfg.ddim_steps if cfg.use_ddim else cfg.denoising_steps
    noise = rng.standard_normal((steps + 1, 3, cfg.horizon_steps, cfg.action_dim)).astype(np.float32)
    ref = _outputs(th_src, state, noise, torch.from_numpy)
    tf_model = TFDiffusion(cfg)
    for fmt, (there, back) in {"canonical": ("a.npz", "b.npz"), "torch": ("a.pt", "b.pt"),
                               "tf": ("a_tf", "b_tf")}.items():
        # torch -> file -> tf
        write_checkpoint(tmp / there, Checkpoint({"model": torch_io.export_state(th_src)}, {"step": 7}), fmt)
        loaded = read_checkpoint(tmp / there)
        assert loaded.meta["step"] == 7, fmt
        for _, v in tf_model.named_parameters():  # the last format's weights must not survive a silent miss
            v.assign(tf.zeros_like(v))
        tf_io.load_state(tf_model, loaded.group("model"))
        # float32 files between frameworks (the twins' float64 agreement is the other tests' job)
        assert relative_diff(_outputs(tf_model, state, noise, tf.constant), ref) <= SERVING_RTOL, fmt

        # tf -> file -> torch: bit-identical parameters, identical outputs
        write_checkpoint(tmp / back, Checkpoint({"model": tf_io.export_state(tf_model)}, {}), fmt)
        th_back = TorchDiffusion(cfg)
        torch_io.load_state(th_back, read_checkpoint(tmp / back).group("model"))
        for name, p in th_back.named_parameters():
            np.testing.assert_array_equal(p.detach().numpy(), dict(th_src.named_parameters())[name].detach().numpy(),
                                          err_msg=f"{fmt} {name}")
        np.testing.assert_array_equal(_outputs(th_back, state, noise, torch.from_numpy), ref, err_msg=fmt)
