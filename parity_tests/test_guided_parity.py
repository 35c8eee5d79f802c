"""Reward-guided diffusion twins (core_*/algorithms/reward_guided.py): the loss and every gradient, DDPM
sampling with and without MPPI, two epochs of training through the driver's own draws (parameters, AdamW
state, validation rewards), and the black-box reward path, judged in float32 and float64 by the one rule."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings

from dppo.parity.report import twin_report
from dppo.training import guided
from parity_tests import strategies as s
from parity_tests.gate import assert_twins_agree
from shared.algorithms.offpolicy import minibatch_noise, minibatch_timesteps
from shared.guided import rosenbrock
from shared.guided.reward_weight import reward_weight
from shared.precision import as_compute
from shared.settings.guided import GuidedConfig, load_guided_settings

CONFIG = "configs/reward_guided/rosenbrock.yaml"
BACKENDS = ("torch", "tf")


def _twins(cfg: GuidedConfig) -> dict[str, Any]:
    params = guided.initial_params(cfg)
    return {b: guided.make_agent(cfg, b, params) for b in BACKENDS}


def _loss_and_gradients(agent: Any, backend: str, batch: dict[str, np.ndarray], lam: float) -> dict[str, Any]:
    if backend == "torch":
        import torch

        out = agent.losses(*(torch.from_numpy(batch[k]) for k in ("x", "p0", "t", "noise")), lam)
        out["loss"].backward()
        return {**{k: v.detach().numpy() for k, v in out.items()},
                **{f"grad/{k}": p.grad.numpy().copy() for k, p in agent.named}}
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = agent.losses(*(tf.constant(batch[k]) for k in ("x", "p0", "t", "noise")), tf.constant(as_compute(lam)))
    grads = tape.gradient(out["loss"], agent.variables)
    return {**{k: v.numpy() for k, v in out.items()},
            **{f"grad/{k}": g.numpy() for (k, _), g in zip(agent.named, grads)}}


@settings(deadline=None)
@given(overrides=s.guided_overrides(), seed=s.seeds)
def test_loss_every_gradient_and_sampling_agree(overrides: list[str], seed: int) -> None:
    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        cfg = load_guided_settings(CONFIG, [*overrides, f"seed={seed % 1000}"])
        twins = _twins(cfg)
        rng = np.random.default_rng(seed)
        B, T = cfg.train.batch_size, cfg.model.denoising_steps
        x, p0 = rosenbrock.dataset(B, seed % 1000)
        batch = {"x": as_compute(x), "p0": as_compute(p0), "t": rng.integers(0, T, B).astype(np.int64),
                 "noise": as_compute(rng.standard_normal((B, 2)))}
        out = {b: _loss_and_gradients(a, b, batch, 0.5) for b, a in twins.items()}
        q = {("loss", k): (out["torch"][k], out["tf"][k]) for k in out["torch"]}
        draws = {k: as_compute(v) for k, v in guided.sampling_draws(cfg, seed % 1000, 1, 5).items()}
        ctx = as_compute(rosenbrock.validation_contexts(seed % 1000, 1, 5))
        for mppi in (False, True):
            q[("sample", f"mppi={mppi}")] = tuple(guided.sample(twins[b], cfg, ctx, draws, mppi) for b in BACKENDS)
        return q

    assert_twins_agree(twin_report(measure))


def test_two_epochs_of_training_give_the_same_weights_optimizer_state_and_validation() -> None:
    over = ["model.hidden_dim=24", "model.time_dim=6", "model.denoising_steps=10", "data.size=96",
            "train.batch_size=16", "train.epochs=2", "train.warmup_fraction=0", "train.reward_weight=0.5",
            "train.reward_gradient=true", "sample.validation_size=8", "sample.mppi_candidates=3"]

    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        cfg = load_guided_settings(CONFIG, over)
        twins = _twins(cfg)
        x, p = (as_compute(a) for a in rosenbrock.dataset(cfg.data.size, cfg.seed))
        q: dict[tuple[str, str], tuple[Any, Any]] = {}
        for epoch in (1, 2):
            lam = reward_weight(epoch - 1, 2, cfg.train.reward_weight, 0.0, cfg.train.ramp_fraction)
            logs: dict[str, list] = {b: [] for b in BACKENDS}
            for b_i, rows in enumerate(guided.batch_order(cfg.seed, epoch, len(x), cfg.train.batch_size)):
                t = minibatch_timesteps(cfg.seed, epoch, guided.TIMESTEPS, b_i, len(rows), 10)
                noise = as_compute(minibatch_noise(cfg.seed, epoch, guided.NOISE, b_i, (len(rows), 2)))
                for b in BACKENDS:
                    logs[b].append(twins[b].train_step(x[rows], p[rows], t, noise, lam)["loss"])
            q[("train", f"epoch {epoch} losses")] = (np.array(logs["torch"]), np.array(logs["tf"]))
            val = {b: guided.validate(twins[b], cfg, cfg.seed, epoch) for b in BACKENDS}
            for k in ("val_reward", "val_reward_plain"):
                q[("validation", f"epoch {epoch} {k}")] = (val["torch"][k], val["tf"][k])
        groups = {b: a.state_groups() for b, a in twins.items()}
        for group in ("model", "optimizer"):
            for name, value in groups["torch"][group].items():
                q[(group, name)] = (value, groups["tf"][group][name])
        return q

    assert_twins_agree(twin_report(measure))


def test_black_box_reward_samples_as_the_differentiable_one_and_the_twins_agree() -> None:
    over = ["model.hidden_dim=16", "model.denoising_steps=8", "sample.mppi_candidates=4"]

    def measure() -> dict[tuple[str, str], tuple[Any, Any]]:
        q = {}
        for black_box in (False, True):
            cfg = load_guided_settings(CONFIG, [*over, f"black_box_reward={str(black_box).lower()}"])
            twins = _twins(cfg)
            draws = {k: as_compute(v) for k, v in guided.sampling_draws(cfg, 0, 1, 6).items()}
            ctx = as_compute(rosenbrock.validation_contexts(0, 1, 6))
            q[("sample", f"black_box={black_box}")] = tuple(guided.sample(twins[b], cfg, ctx, draws, True)
                                                            for b in BACKENDS)
        return q

    assert_twins_agree(twin_report(measure))
    samples = measure()  # float32: the host (numpy) reward weighs the candidates as the in-graph one does
    for b, backend in enumerate(BACKENDS):
        np.testing.assert_allclose(samples[("sample", "black_box=True")][b], samples[("sample", "black_box=False")][b],
                                   rtol=1e-5, atol=1e-6, err_msg=backend)
