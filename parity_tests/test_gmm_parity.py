"""GMM policy twins: GMM_MLP layer by layer with every parameter's gradient (hypothesis configs), the mixture's
log-density, entropy and std with their gradients, sampling from the same numpy draws, GMM pre-training steps
(losses, parameters, EMA, optimizer state), and PPO_GMM whole agents (acting, scoring, PPO updates end to end and
teacher-forced) through `dppo parity`'s section of the ppo_gmm driver."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
from hypothesis import given

import core_tf.algorithms.gmm as tf_gmm
import core_torch.algorithms.gmm as torch_gmm
from core_tf.algorithms.pretrain import GMMPretrainBackend as TFBackend
from core_tf.runtime.probe import probe as tf_probe
from core_torch.algorithms.pretrain import GMMPretrainBackend as TorchBackend
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.engine import run_parity
from dppo.parity.report import probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute, twin_pair
from shared.algorithms.gmm import split_step_noise, step_noise_shape
from shared.data.dataset import EpochSampler, gather_batch, load_dppo_dataset, stitched_indices
from shared.data.synthetic import write_synthetic_dataset
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import torch_default_init
from shared.param_spec.families import network_spec
from shared.param_spec.gmm_mlp import GMMMLPConfig, gmm_mlp_init_overrides
from shared.precision import as_compute
from shared.settings import GMMModelConfig, load_settings

FT_CONFIG = "configs/hopper/ft_ppo_gmm_mlp.yaml"
SMALL_FT = ["base_policy_path=null", "model.actor.mlp_dims=[16,16,16]", "model.critic.mlp_dims=[16,16,16]",
            "train.batch_size=12", "train.update_epochs=2", "num_modes=3", "horizon_steps=2", "act_steps=2"]


def _flat(framework, means, stds, logits):
    """One output tensor (B, 2 M D + M) so the probe's cotangent reaches every head."""
    B = means.shape[0]
    if framework is torch:
        return torch.cat([means.reshape(B, -1), stds.reshape(B, -1), logits], -1)
    return tf.concat([tf.reshape(means, [B, -1]), tf.reshape(stds, [B, -1]), logits], -1)


@given(cfg=s.gmm_mlp_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_gmm_mlp_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    inputs = {"state": s.bounded_floats(rng, (batch, 1, cfg.cond_dim))}
    cot = s.bounded_floats(rng, (batch, 2 * cfg.output_dim + cfg.num_modes))

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        x = in_compute(inputs)
        c = in_compute({"c": cot})["c"]
        return probe_quantities("gmm_mlp", torch_probe(th, lambda state: _flat(torch, *th(state)), x, c),
                                tf_probe(tf_, lambda state: _flat(tf, *tf_(state)), x, c))

    report = twin_report(measure)
    assert_twins_agree(report)
    assert not [r for r in report.rows if "(shape" in r.name]  # the same layers traced on both sides


@s.examples(2, 12)  # cheap: no traced probe
@given(cfg=s.gmm_mlp_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_mixture_logprob_entropy_std_and_samples_agree_with_gradients(cfg, batch, seed):
    """The policy's numbers end to end: log p of chunks near and far from the modes, approximate entropy, std,
    their gradients w.r.t. every parameter, and sampled chunks (stochastic and deterministic) from one draw."""
    rng = np.random.default_rng(seed)
    state32 = s.bounded_floats(rng, (batch, 1, cfg.cond_dim))
    x32 = s.bounded_floats(rng, (batch, cfg.chunk_dim), 1.2)
    noise32 = rng.standard_normal(step_noise_shape(batch, cfg.chunk_dim)).astype(np.float32)
    params = torch_default_init(network_spec(cfg), seed, gmm_mlp_init_overrides(cfg))

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        import core_tf.runtime.canonical as tf_io
        import core_torch.runtime.canonical as torch_io

        torch_io.load_state(th, params)
        tf_io.load_state(tf_, params)
        state, x, noise = (as_compute(a) for a in (state32, x32, noise32))
        eps, u = split_step_noise(noise)
        q = {}
        th_out = th(torch.from_numpy(state))
        lp, ent, std = (torch_gmm.mixture_logprob(torch.from_numpy(x), *th_out), torch_gmm.mixture_entropy(*th_out[1:]),
                        torch_gmm.mixture_std(*th_out[1:]))
        named = list(th.named_parameters())
        th_grads = torch.autograd.grad(lp.mean() + 0.1 * ent + std, [p for _, p in named], allow_unused=True)
        with tf.GradientTape() as tape:
            tf_out = tf_(tf.constant(state))
            tlp = tf_gmm.mixture_logprob(tf.constant(x), *tf_out)
            tent, tstd = tf_gmm.mixture_entropy(*tf_out[1:]), tf_gmm.mixture_std(*tf_out[1:])
            tloss = tf.reduce_mean(tlp) + 0.1 * tent + tstd
        tf_named = dict(tf_.named_parameters())
        tf_grads = tape.gradient(tloss, [tf_named[n] for n, _ in named])
        q[("gmm", "logprob")] = (lp.detach().numpy(), tlp.numpy())
        q[("gmm", "entropy")] = (ent.detach().numpy(), tent.numpy())
        q[("gmm", "std")] = (std.detach().numpy(), tstd.numpy())
        for (n, p), g, tg in zip(named, th_grads, tf_grads):
            q[("gmm/grad", n)] = (np.zeros(tuple(p.shape)) if g is None else g.numpy(),
                                  np.zeros(tuple(p.shape)) if tg is None else tg.numpy())
        for det in (False, True):
            with torch.no_grad():
                a = torch_gmm.sample_mixture(*th(torch.from_numpy(state)), torch.from_numpy(eps), torch.from_numpy(u),
                                             det)
            ta = tf_gmm.sample_mixture(*tf_out, tf.constant(eps), tf.constant(u), det)
            q[("gmm/sample", f"deterministic={det}")] = (a.numpy(), ta.numpy())
        return q

    assert_twins_agree(twin_report(measure))


NETWORKS = {
    "fixed_std": GMMMLPConfig(3, 2, 11, (32, 32, 32), num_modes=3, fixed_std=0.2, residual_style=True),
    "learned_std": GMMMLPConfig(3, 2, 11, (32, 32), num_modes=4, std_min=0.05, std_max=0.8, activation_type="ReLU",
                                use_layernorm=True),
    "learn_fixed_std": GMMMLPConfig(3, 2, 11, (32, 32), num_modes=2, fixed_std=0.3, learn_fixed_std=True,
                                    std_max=0.5),
}


@pytest.mark.parametrize("network", list(NETWORKS))
def test_twenty_four_gmm_pretraining_steps_agree_in_losses_parameters_and_ema(tmp_path, network):
    net = NETWORKS[network]
    cfg = GMMModelConfig(network=net, horizon_steps=2)
    data = load_dppo_dataset(write_synthetic_dataset(tmp_path, 11, 3, num_episodes=6), 11, 3, 2)
    indices = stitched_indices(data.traj_lengths, 2)
    sampler = EpochSampler(len(indices), 32, seed=5)
    schedule = CosineWarmupRestarts(first_cycle_steps=4, max_lr=3e-3, min_lr=1e-4, warmup_steps=1)
    init = torch_default_init(network_spec(net, "network."), 5, gmm_mlp_init_overrides(net, "network."))
    kwargs = dict(config=cfg, init_params=init, learning_rate=3e-3, weight_decay=1e-2, schedule=schedule,
                  steps_per_epoch=len(sampler))
    first_last: list[float] = []

    def measure():
        backends = {"torch": TorchBackend(**kwargs), "tf": TFBackend(**kwargs, num_epochs=100)}
        losses = {name: [] for name in backends}
        entropies = {name: [] for name in backends}
        steps = 0
        for epoch in range(1, 100):
            for rows in sampler.batches(epoch):
                actions, states = (as_compute(a) for a in gather_batch(data, indices[rows], 2, 1))
                for name, be in backends.items():
                    losses[name].append(be.train_step(actions, states))
                    entropies[name].append(be.step_metrics()["entropy"])
                    be.ema_update(0.9) if steps >= 4 else be.ema_reset()
                steps += 1
            for be in backends.values():
                be.end_epoch()
            if steps >= 24:
                break
        q = {}
        for i in range(steps):
            q[("loss", f"step {i}")] = (losses["torch"][i], losses["tf"][i])
            q[("entropy", f"step {i}")] = (entropies["torch"][i], entropies["tf"][i])
        groups = {name: be.state_groups() for name, be in backends.items()}
        for group in ("model", "ema", "optimizer"):
            for pname, value in groups["torch"][group].items():
                q[(group, pname)] = (value, groups["tf"][group][pname])
        first_last[:] = [losses["torch"][0], losses["torch"][-1]]
        return q

    assert_twins_agree(twin_report(measure))
    assert first_last[1] < first_last[0]  # it actually trained


@pytest.mark.parametrize("std", ["learn_fixed_std", "learned_std"])
def test_ppo_gmm_agents_agree_in_acting_scoring_and_updates(std):
    """dppo parity's ppo_gmm section: actions, values, log-probs, three PPO minibatch updates (losses and every
    parameter), end to end and teacher-forced."""
    extra = [] if std == "learn_fixed_std" else ["model.actor.fixed_std=null", "model.actor.learn_fixed_std=false",
                                                  "model.actor.std_min=0.05", "model.actor.std_max=0.3"]
    cfg = load_settings(FT_CONFIG, [*SMALL_FT, *extra], ("finetune",))
    report = run_parity(cfg, seed=3, batch=12)
    assert any(r.section == "ppo/update" for r in report.rows) and any(r.section == "ppo/act" for r in report.rows)
    assert_twins_agree(report)
