"""Diffusion loss, its gradients, and whole sampling chains under injected noise."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import torch
from hypothesis import given
from hypothesis import strategies as st

from core_tf.runtime.probe import probe as tf_probe
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.report import probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute, twin_pair
from shared.param_spec import DiffusionMLPConfig
from shared.settings import DiffusionConfig


def _inputs(cfg, batch, rng):
    chunk = (batch, cfg.horizon_steps, cfg.action_dim)
    return {
        "x0": s.bounded_floats(rng, chunk, 1.0),
        "state": s.bounded_floats(rng, (batch, cfg.cond_steps, cfg.obs_dim)),
        "t": rng.integers(0, cfg.denoising_steps, batch).astype(np.int64),
        "noise": rng.standard_normal(chunk).astype(np.float32),
    }


@given(cfg=s.diffusion_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_q_sample_and_training_loss_and_gradients_agree(cfg, batch, seed):
    drawn = _inputs(cfg, batch, np.random.default_rng(seed))

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        inputs = in_compute(drawn)
        q = probe_quantities("loss", torch_probe(th, lambda **kw: th.loss(**kw), inputs),
                             tf_probe(tf_, lambda **kw: tf_.loss(**kw), inputs))
        q_th = th.q_sample(*(torch.from_numpy(inputs[k]) for k in ("x0", "t", "noise")))
        q_tf = tf_.q_sample(*(tf.constant(inputs[k]) for k in ("x0", "t", "noise")))
        q[("q_sample", "x_t")] = (q_th.numpy(), q_tf.numpy())
        return q

    report = twin_report(measure)
    assert_twins_agree(report)


@given(cfg=s.diffusion_configs(), batch=s.batch_sizes, seed=s.seeds, deterministic=st.booleans(),
       min_std=st.sampled_from([1e-3, 0.1]))
def test_sampling_chains_agree_under_injected_noise(cfg, batch, seed, deterministic, min_std):
    rng = np.random.default_rng(seed)
    state32 = s.bounded_floats(rng, (batch, cfg.cond_steps, cfg.obs_dim))
    steps = cfg.ddim_steps if cfg.use_ddim else cfg.denoising_steps
    noise32 = rng.standard_normal((steps + 1, batch, cfg.horizon_steps, cfg.action_dim)).astype(np.float32)

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        state, noise = in_compute({"state": state32, "noise": noise32}).values()
        a = th.sample(torch.from_numpy(state), torch.from_numpy(noise), deterministic, min_std, return_chain=True)
        b = tf_.sample(state, noise, deterministic, min_std, return_chain=True)
        assert a.chains.shape == (batch, steps + 1, cfg.horizon_steps, cfg.action_dim)
        np.testing.assert_array_equal(a.chains[:, -1].numpy(), a.trajectories.numpy())
        if cfg.final_action_clip_value is not None:
            assert np.abs(b.trajectories.numpy()).max() <= cfg.final_action_clip_value
        q = {("chain", f"x[{i}]"): (a.chains[:, i].numpy(), b.chains.numpy()[:, i]) for i in range(steps + 1)}
        q[("chain", "final")] = (a.trajectories.numpy(), b.trajectories.numpy())
        return q

    report = twin_report(measure)
    assert_twins_agree(report)


def test_sampler_clips_injected_noise_at_randn_clip_value():
    """A huge noise draw moves the chain exactly as a draw at the clip value does."""
    cfg = DiffusionConfig(DiffusionMLPConfig(2, 2, 3, 8, (8,)), 2, 3, 2, denoising_steps=5,
                          randn_clip_value=3.0)
    th, tf_, _ = twin_pair(cfg, 0)
    rng = np.random.default_rng(0)
    state = s.bounded_floats(rng, (4, 1, 3))
    noise = rng.standard_normal((6, 4, 2, 2)).astype(np.float32)
    big, clipped = noise.copy(), noise.copy()
    big[2], clipped[2] = 50.0, 3.0
    for model, to in ((th, torch.from_numpy), (tf_, tf.constant)):
        x_big = np.asarray(model.sample(to(state), to(big), deterministic=False, min_sampling_std=0.1).trajectories)
        x_clip = np.asarray(
            model.sample(to(state), to(clipped), deterministic=False, min_sampling_std=0.1).trajectories)
        np.testing.assert_allclose(x_big, x_clip, rtol=0, atol=1e-6)
