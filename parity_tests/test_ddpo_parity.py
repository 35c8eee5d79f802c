"""DDPO twins (core_*/algorithms/ddpo.py): the class-conditional denoiser with classifier-free guidance
(outputs and every gradient), pre-training steps with EMA, DDIM sampling at eta = 1 with the per-step
log-probabilities it records, the loss and every gradient of DDPO-SF, DDPO-IS, DDPO-ISKL, RWR and sparse RWR
on a fixed batch, and two fine-tuning iterations through the driver's own draws, judged in float32 and
float64 by the one rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dppo.parity.report import twin_report
from dppo.training import ddpo
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from shared.ddpo import digits
from shared.ddpo.normalize import PromptStats
from shared.precision import as_compute
from shared.settings.ddpo import ALGORITHMS, KL_ESTIMATORS, DDPOConfig, load_ddpo_pretrain_settings, load_ddpo_settings

CONFIG = "configs/ddpo/digits_compress_is.yaml"
PRETRAIN = "configs/ddpo/pretrain_digits.yaml"
BACKENDS = ("torch", "tf")
SMALL = ["model.hidden_dim=24", "model.time_dim=6", "model.denoising_steps=40", "sample.ddim_steps=8"]


def _cfg(overrides: list[str]) -> DDPOConfig:
    return load_ddpo_settings(CONFIG, [*SMALL, *overrides])


def _twins(cfg: DDPOConfig, seed: int = 0, backends: tuple[str, ...] = BACKENDS) -> dict[str, Any]:
    params = ddpo.initial_params(cfg.model, seed)
    ref = ddpo.initial_params(cfg.model, seed + 1)  # a reference that differs from the policy: the KL is not 0
    return {b: ddpo.make_agent(cfg, b, params, ref) for b in backends}


def _loss_and_gradients(agent: Any, backend: str, batch: dict[str, np.ndarray]) -> dict[str, Any]:
    if backend == "torch":
        import torch

        out = agent.losses({k: torch.from_numpy(v) for k, v in batch.items()})
        out["loss"].backward()
        return {**{k: v.detach().numpy() for k, v in out.items()},
                **{f"grad/{k}": p.grad.numpy().copy() for k, p in agent.named}}
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = agent.losses({k: tf.constant(v) for k, v in batch.items()})
    grads = tape.gradient(out["loss"], agent.variables)
    return {**{k: v.numpy() for k, v in out.items()},
            **{f"grad/{k}": g.numpy() for (k, _), g in zip(agent.named, grads)}}


def _guided_and_gradients(agent: Any, backend: str, x: np.ndarray, labels: np.ndarray, t01: np.ndarray,
                          probe: np.ndarray) -> dict[str, Any]:
    """eps_u + w (eps_c - eps_u) and the gradient of sum(probe * it) for every parameter."""
    if backend == "torch":
        import torch

        from core_torch.algorithms.ddpo import guided_eps

        eps = guided_eps(agent.model, torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(t01),
                         agent.sample_cfg.guidance)
        (eps * torch.from_numpy(probe)).sum().backward()
        return {"eps": eps.detach().numpy(), **{f"grad/{k}": p.grad.numpy().copy() for k, p in agent.named}}
    import tensorflow as tf

    from core_tf.algorithms.ddpo import guided_eps

    with tf.GradientTape() as tape:
        eps = guided_eps(agent.model, tf.constant(x), tf.constant(labels), tf.constant(t01), agent.sample_cfg.guidance)
        total = tf.reduce_sum(eps * probe)
    grads = tape.gradient(total, agent.variables)
    return {"eps": eps.numpy(), **{f"grad/{k}": g.numpy() for (k, _), g in zip(agent.named, grads)}}


@s.examples(1 / 2, 4)
@given(seed=s.seeds, guidance=st.sampled_from([0.0, 1.0, 5.0]), hidden=st.integers(4, 32))
def test_guided_denoiser_outputs_and_every_gradient_agree(seed: int, guidance: float, hidden: int) -> None:
    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        cfg = _cfg([f"model.hidden_dim={hidden}", f"sample.guidance={guidance}"])
        twins = _twins(cfg, seed % 1000)
        rng = np.random.default_rng(seed)
        n = 7
        x, t01 = as_compute(rng.standard_normal((n, 64))), as_compute(rng.random((n, 1)))
        labels, probe = rng.integers(0, 11, n).astype(np.int64), as_compute(rng.standard_normal((n, 64)))
        out = {b: _guided_and_gradients(a, b, x, labels, t01, probe) for b, a in twins.items()}
        return {("denoiser", k): (out["torch"][k], out["tf"][k]) for k in out["torch"]}

    assert_twins_agree(twin_report(measure))


def test_pretraining_steps_agree_model_ema_and_optimizer() -> None:
    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        cfg = load_ddpo_pretrain_settings(PRETRAIN, [*SMALL[:3], "pretrain.batch_size=32", "pretrain.ema_decay=0.9"])
        params = ddpo.initial_params(cfg.model, 3)
        twins = {b: ddpo.make_pretrainer(cfg, b, params) for b in BACKENDS}
        x, y = digits.digits()
        q: dict[tuple[str, str], tuple[Any, Any]] = {}
        for b_i, rows in enumerate(ddpo.batch_order(cfg.seed, 1, len(x), 32)[:3]):
            batch = ddpo.pretrain_batch(cfg, 1, b_i, rows, as_compute(x), y)
            batch = {k: as_compute(v) if v.dtype.kind == "f" else v for k, v in batch.items()}
            lr = ddpo.cosine_lr(b_i, 3, cfg.pretrain.learning_rate)
            out = {b: t.train_step(**batch, lr=lr) for b, t in twins.items()}
            for k in out["torch"]:
                q[("step", f"{b_i} {k}")] = (out["torch"][k], out["tf"][k])
        groups = {b: t.state_groups() for b, t in twins.items()}
        for group in ("model", "ema", "optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        return q

    assert_twins_agree(twin_report(measure))


def _sampled(cfg: DDPOConfig, twins: dict[str, Any], seed: int, n: int,
             backends: tuple[str, ...] = BACKENDS) -> dict[str, dict[str, np.ndarray]]:
    """backends: the twins that sample (TF traces its chain, seconds each time: only where TF's chains are used)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int64)
    noise = as_compute(rng.standard_normal((cfg.sample.ddim_steps + 1, n, 64)))
    return {b: {**twins[b].sample(labels, noise), "labels": labels} for b in backends}


@s.examples(1 / 3, 3)
@given(seed=s.seeds, guidance=st.sampled_from([1.0, 5.0]), clip=st.sampled_from(["null", "1.0"]))
def test_sampled_chains_and_their_logprobs_agree_and_rescoring_reproduces_them(seed: int, guidance: float,
                                                                               clip: str) -> None:
    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        cfg = _cfg([f"sample.guidance={guidance}", f"sample.clip_x0={clip}"])
        twins = _twins(cfg, seed % 1000)
        out = _sampled(cfg, twins, seed, 5)
        q = {("sample", k): (out["torch"][k], out["tf"][k]) for k in ("chains", "logprobs")}
        rescored = {}
        for b, a in twins.items():  # each twin scores the torch chains (the same input for both)
            chains, labels = out["torch"]["chains"], out["torch"]["labels"]
            if b == "torch":
                import torch

                rescored[b] = a.chain_logprobs(a.model, torch.from_numpy(chains), torch.from_numpy(labels)).detach()
            else:
                import tensorflow as tf

                rescored[b] = a.chain_logprobs(a.model, tf.constant(chains), tf.constant(labels))
            rescored[b] = rescored[b].numpy()
        q[("score", "chain_logprobs")] = (rescored["torch"], rescored["tf"])
        return q

    assert_twins_agree(twin_report(measure))
    cfg = _cfg([f"sample.guidance={guidance}", f"sample.clip_x0={clip}"])
    twins = _twins(cfg, seed % 1000, ("torch",))
    out = _sampled(cfg, twins, seed, 5, ("torch",))["torch"]
    import torch

    again = twins["torch"].chain_logprobs(twins["torch"].model, torch.from_numpy(out["chains"]),
                                          torch.from_numpy(out["labels"])).detach().numpy()
    np.testing.assert_allclose(again, out["logprobs"], rtol=1e-4, atol=1e-4)  # scoring = what sampling recorded


def _batch(cfg: DDPOConfig, twins: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 7)
    n = 6
    smp = _sampled(cfg, twins, seed, n, ("torch",))["torch"]  # both twins are scored on the torch chains
    # old log-probs moved off the current ones so that some ratios leave the clip range and some do not
    shift = rng.standard_normal(smp["logprobs"].shape) * rng.choice([0.0, 3 * cfg.train.clip_range], (n, 1))
    return {"chains": smp["chains"], "labels": smp["labels"], "advantages": as_compute(rng.standard_normal(n)),
            "old_logprobs": as_compute(smp["logprobs"] + shift), "x0": smp["chains"][:, -1],
            "t": rng.integers(0, cfg.model.denoising_steps, n).astype(np.int64),
            "noise": as_compute(rng.standard_normal((n, 64))), "weights": as_compute(rng.random(n))}


@s.examples(1, 6)
@given(algorithm=st.sampled_from(ALGORITHMS), seed=s.seeds, clip_range=st.sampled_from([1e-4, 0.1]),
       kl_coef=st.sampled_from([0.0, 0.1, 2.0]), kl_estimator=st.sampled_from(KL_ESTIMATORS),
       adv_clip=st.sampled_from([0.5, 5.0]))
def test_every_algorithms_loss_and_every_gradient_agree(algorithm: str, seed: int, clip_range: float,
                                                         kl_coef: float, kl_estimator: str, adv_clip: float) -> None:
    _losses_agree(algorithm, seed, clip_range, kl_coef, kl_estimator, adv_clip)


@pytest.mark.parametrize("kl_estimator", KL_ESTIMATORS)
def test_iskl_with_each_kl_estimator_agrees(kl_estimator: str) -> None:
    _losses_agree("iskl", 11, 0.1, 2.0, kl_estimator, 5.0)


def _losses_agree(algorithm: str, seed: int, clip_range: float, kl_coef: float, kl_estimator: str,
                  adv_clip: float) -> None:
    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        cfg = _cfg([f"algorithm={algorithm}", f"train.clip_range={clip_range}", f"train.kl_coef={kl_coef}",
                    f"train.kl_estimator={kl_estimator}", f"train.adv_clip_max={adv_clip}"])
        twins = _twins(cfg, seed % 1000)
        batch = _batch(cfg, twins, seed)
        out = {b: _loss_and_gradients(a, b, batch) for b, a in twins.items()}
        return {(f"{algorithm} {kl_estimator}", k): (out["torch"][k], out["tf"][k]) for k in out["torch"]}

    assert_twins_agree(twin_report(measure))


def test_two_iterations_through_the_driver_agree_for_every_algorithm() -> None:
    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        q: dict[tuple[str, str], tuple[Any, Any]] = {}
        for alg in ALGORITHMS:
            cfg = _cfg([f"algorithm={alg}", "reward=alignment", "train.samples_per_iteration=6",
                        "train.updates_per_iteration=2", "train.batch_size=4", "train.clip_range=0.1"])
            twins = _twins(cfg)
            stats = {b: PromptStats(10, cfg.train.stat_buffer, cfg.train.stat_min_count) for b in BACKENDS}
            for k in (1, 2):
                smp = {b: ddpo.collect(twins[b], cfg, k, stats[b]) for b in BACKENDS}
                for key in ("chains", "logprobs", "rewards", "advantages"):
                    q[(alg, f"iteration {k} {key}")] = (smp["torch"][key], smp["tf"][key])
                for u, (mt, mf) in enumerate(zip(ddpo.minibatches(cfg, k, smp["torch"]),
                                                 ddpo.minibatches(cfg, k, smp["tf"]))):
                    st_t, st_f = twins["torch"].train_step(mt), twins["tf"].train_step(mf)
                    q[(alg, f"iteration {k} update {u} loss")] = (st_t["loss"], st_f["loss"])
            groups = {b: a.state_groups() for b, a in twins.items()}
            for group in ("model", "optimizer"):
                for name, value in groups["torch"][group].items():
                    q[(alg, f"{group}/{name}")] = (value, groups["tf"][group][name])
        return q

    assert_twins_agree(twin_report(measure))
