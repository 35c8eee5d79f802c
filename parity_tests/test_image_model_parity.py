"""The models that condition on camera frames, twin against twin: the image diffusion model's training loss with
its gradients (parameters, state, noisy input) and its sampling chain under injected noise, on a (state, rgb)
observation; the image Gaussian policy's pre-training loss and the ViT critic's values with gradients. Small drawn
architectures (frames 8-16 pixels, patch 8: parity_tests/strategies.py), uint8 frames as the loops give them,
float32 and float64 error budgets of the gate."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import core_tf.algorithms.pretrain as tf_pretrain
import core_tf.runtime.canonical as tf_io
import core_torch.algorithms.pretrain as torch_pretrain
import core_torch.runtime.canonical as torch_io
from core_tf.runtime.probe import probe as tf_probe
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.report import probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute, twin_pair
from shared.data.random_shifts import draw_shifts, shift_frames
from shared.param_spec.families import network_init
from shared.settings import DiffusionConfig, GaussianModelConfig

_EXAMPLES = s.examples(1 / 4, 3)  # a ViT per example, two twins


def _frames(cfg, batch: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames (B, img_cond_steps, 3 num_img, H, W), shifted as the pre-training driver does when the
    network augments."""
    bb = cfg.backbone
    rgb = rng.integers(0, 256, (batch, cfg.img_cond_steps, 3 * cfg.num_img, bb.img_h, bb.img_w), dtype=np.uint8)
    return shift_frames(rgb, draw_shifts(rng, batch, cfg.num_img)) if cfg.augment else rgb


@_EXAMPLES
@given(net=s.vision_diffusion_mlp_configs(), batch=st.integers(1, 4), seed=s.seeds, ddim=st.booleans())
def test_image_diffusion_loss_gradients_and_sampling_agree(net, batch, seed, ddim):
    cfg = DiffusionConfig(net, horizon_steps=net.horizon_steps, obs_dim=net.cond_dim, action_dim=net.action_dim,
                          denoising_steps=10, use_ddim=ddim, ddim_steps=3 if ddim else None)
    rng = np.random.default_rng(seed)
    chunk = (batch, net.horizon_steps, net.action_dim)
    drawn = {"x0": s.bounded_floats(rng, chunk, 1.0), "state": s.bounded_floats(rng, (batch, 1, net.cond_dim)),
             "rgb": _frames(net, batch, rng), "t": rng.integers(0, 10, batch).astype(np.int64),
             "noise": rng.standard_normal(chunk).astype(np.float32)}
    steps = cfg.num_sampling_steps
    chain_noise = rng.standard_normal((steps + 1, *chunk)).astype(np.float32)

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        th.eval()
        x = in_compute(drawn)

        def loss(model):
            return lambda x0, state, rgb, t, noise: model.loss(x0, (state, rgb), t, noise)

        q = probe_quantities("image_diffusion/loss", torch_probe(th, loss(th), x), tf_probe(tf_, loss(tf_), x))
        state, noise = in_compute({"state": drawn["state"], "noise": chain_noise}).values()
        a = th.sample((torch.from_numpy(state), torch.from_numpy(drawn["rgb"])), torch.from_numpy(noise),
                      deterministic=False, min_sampling_std=0.1, return_chain=True)
        b = tf_.sample((state, drawn["rgb"]), noise, deterministic=False, min_sampling_std=0.1, return_chain=True)
        for i in range(steps + 1):
            q[("image_diffusion/chain", f"x[{i}]")] = (a.chains[:, i].numpy(), b.chains.numpy()[:, i])
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    grads = {r.name for r in report.rows if r.section == "image_diffusion/loss/grad_input"}
    assert {"x0", "state", "noise"} <= grads and "rgb" not in grads  # frames are uint8 data, not a variable
    assert any(r.section == "image_diffusion/loss/grad_param" and r.name.startswith("network.backbone")
               for r in report.rows)


@_EXAMPLES
@given(net=s.gaussian_vision_mlp_configs(), critic=s.vit_critic_configs(), batch=st.integers(1, 4), seed=s.seeds)
def test_image_gaussian_policy_loss_and_vit_critic_agree_with_gradients(net, critic, batch, seed):
    model = GaussianModelConfig(net, horizon_steps=net.horizon_steps)
    rng = np.random.default_rng(seed)
    drawn = {"actions": s.bounded_floats(rng, (batch, net.horizon_steps, net.action_dim), 1.0),
             "state": s.bounded_floats(rng, (batch, 1, net.cond_dim)), "rgb": _frames(net, batch, rng)}
    critic_in = {"state": s.bounded_floats(rng, (batch, 1, critic.cond_dim)), "rgb": _frames(critic, batch, rng)}
    init = network_init(net, seed, "network.")

    def measure():
        th, tf_ = torch_pretrain.GaussianModel(model), tf_pretrain.GaussianModel(model)
        torch_io.load_state(th, init)
        tf_io.load_state(tf_, init)
        th.eval()

        def loss(m, **kw):
            return lambda actions, state, rgb: m.loss(actions, (state, rgb), 0.01, **kw)[0]

        x = in_compute(drawn)  # probed on the network (its layers), the output being the model's loss
        q = probe_quantities("image_gaussian/loss", torch_probe(th.network, loss(th), x),
                             tf_probe(tf_.network, loss(tf_, training=False), x))
        c_th, c_tf, _ = twin_pair(critic, seed)
        c_th.eval()
        y = in_compute(critic_in)
        q.update(probe_quantities("vit_critic", torch_probe(c_th, lambda state, rgb: c_th(state, rgb), y),
                                  tf_probe(c_tf, lambda state, rgb: c_tf(state, rgb), y)))
        return q

    report = twin_report(measure)
    assert_twins_agree(report)
    assert {"actions", "state"} <= {r.name for r in report.rows if r.section == "image_gaussian/loss/grad_input"}
    assert {"state"} <= {r.name for r in report.rows if r.section == "vit_critic/grad_input"}
