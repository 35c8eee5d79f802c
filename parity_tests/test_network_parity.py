"""Layer-by-layer forward and gradient parity of the twin networks on drawn architectures."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from core_tf.runtime.probe import probe as tf_probe
from core_torch.runtime.probe import probe as torch_probe
from dppo.parity.report import ParityReport, probe_quantities, twin_report
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import in_compute, twin_pair


def _assert_parity(report: ParityReport) -> None:
    assert_twins_agree(report)


def _probe_report(section, cfg, seed, inputs, cot, call):
    """Probe the twins built from cfg in float32 and float64 and judge every layer by the rule."""
    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        x = in_compute(inputs)
        c = None if cot is None else in_compute({"c": cot})["c"]
        return probe_quantities(section, torch_probe(th, call(th), x, c), tf_probe(tf_, call(tf_), x, c))

    return twin_report(measure)


@given(cfg=s.mlp_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_mlp_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    inputs = {"x": s.bounded_floats(rng, (batch, cfg.dim_list[0]))}
    cot = s.bounded_floats(rng, (batch, cfg.dim_list[-1]))
    _assert_parity(_probe_report("mlp", cfg, seed, inputs, cot, lambda m: lambda x: m(x)))


@given(cfg=s.diffusion_mlp_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_diffusion_mlp_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    inputs = {
        "x": s.bounded_floats(rng, (batch, cfg.horizon_steps, cfg.action_dim), 3.0),
        "t": rng.integers(0, 100, batch).astype(np.int64),
        "state": s.bounded_floats(rng, (batch, 1, cfg.cond_dim)),
    }
    cot = s.bounded_floats(rng, (batch, cfg.horizon_steps, cfg.action_dim))
    report = _probe_report("diffusion_mlp", cfg, seed, inputs, cot, lambda m: lambda x, t, state: m(x, t, state))
    _assert_parity(report)
    # the traced layer sets are identical, so nothing was silently skipped
    assert not [r for r in report.rows if "(shape" in r.name]


@given(cfg=s.critic_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_critic_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    inputs = {"state": s.bounded_floats(rng, (batch, cfg.cond_dim))}
    _assert_parity(_probe_report("critic", cfg, seed, inputs, None, lambda m: lambda state: m(state)))


@given(cfg=s.diffusion_mlp_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_denoise_with_per_chain_embeddings_equals_forward_in_both_twins(cfg, batch, seed):
    """The samplers' fast path (time embeddings for all steps and the condition computed once per
    chain, one (1, time_dim) row broadcast per step) gives the full forward's output in both twins,
    and the twins' fast paths agree by the rule."""
    import tensorflow as tf
    import torch

    rng = np.random.default_rng(seed)
    x32 = s.bounded_floats(rng, (batch, cfg.horizon_steps, cfg.action_dim), 3.0)
    state32 = s.bounded_floats(rng, (batch, 1, cfg.cond_dim))
    steps = rng.permutation(100)[:5].astype(np.int64)  # a chain's timesteps

    def measure():
        th, tf_, _ = twin_pair(cfg, seed)
        x, state = in_compute({"x": x32, "state": state32}).values()
        with torch.no_grad():
            th_embs, th_cond = th.time_embedding(torch.from_numpy(steps)), th.condition(torch.from_numpy(state))
        tf_embs, tf_cond = tf_.time_embedding(tf.constant(steps)), tf_.condition(tf.constant(state))
        q = {}
        for i, t in enumerate(steps):
            full_t = np.full(batch, t, np.int64)
            with torch.no_grad():
                th_full = th(torch.from_numpy(x), torch.from_numpy(full_t), torch.from_numpy(state)).numpy()
                th_fast = th.denoise(torch.from_numpy(x), th_embs[i : i + 1], th_cond).numpy()
            tf_full = tf_(tf.constant(x), tf.constant(full_t), tf.constant(state)).numpy()
            tf_fast = tf_.denoise(tf.constant(x), tf_embs[i : i + 1], tf_cond).numpy()
            scale = max(1.0, float(np.abs(th_full).max()))
            np.testing.assert_allclose(th_fast, th_full, atol=1e-6 * scale, rtol=0)
            np.testing.assert_allclose(tf_fast, tf_full, atol=1e-6 * scale, rtol=0)
            q[("denoise", f"fast path t={t}")] = (th_fast, tf_fast)
        return q

    _assert_parity(twin_report(measure))


@given(cfg=s.q_critic_configs(), batch=s.batch_sizes, seed=s.seeds)
def test_q_critic_twins_agree_layer_by_layer_with_gradients(cfg, batch, seed):
    rng = np.random.default_rng(seed)
    inputs = {"state": s.bounded_floats(rng, (batch, 1, cfg.cond_dim)),
              "action": s.bounded_floats(rng, (batch, cfg.action_steps, cfg.action_dim))}
    heads = len(cfg.heads)
    cot = s.bounded_floats(rng, (batch, heads))

    def call(m):
        stack = _stack_for(m)
        return lambda state, action: stack(m(state, action))

    report = _probe_report("q_critic", cfg, seed, inputs, cot, call)
    _assert_parity(report)
    judged = {(r.section, r.name) for r in report.rows if r.kind == "twins"}
    assert ("q_critic/grad_input", "action") in judged  # dQ/da, what DIPO and QSM follow, is compared
    assert {h for h in cfg.heads if ("q_critic/grad_param", f"{h}.{_first_weight(cfg)}") in judged} == set(cfg.heads)


def _stack_for(module):
    """The Q heads as one (B, heads) output, in the module's framework."""
    if hasattr(module, "parameters"):
        import torch

        return lambda qs: torch.stack(qs, dim=-1)
    import tensorflow as tf

    return lambda qs: tf.stack(qs, axis=-1)


def _first_weight(cfg) -> str:
    return "layers.0.weight" if cfg.residual_tyle else "moduleList.0.linear_1.weight"
