"""The machinery the replay baselines (DIPO, DQL, IDQL, QSM) share, judged twin against twin in float32
and float64: a double-Q critic trained by ScheduledAdamW (weight decay, clipping, the per-iteration
cosine rate) with a Polyak-averaged target copy."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import torch

from core_tf.algorithms.target_network import polyak_update as tf_polyak
from core_tf.runtime.scheduled_optimizer import ScheduledAdamW as TFScheduledAdamW
from core_torch.algorithms.target_network import polyak_update as torch_polyak
from core_torch.runtime.scheduled_optimizer import ScheduledAdamW as TorchScheduledAdamW
from dppo.parity.report import twin_report
from parity_tests.gate import assert_twins_agree
from parity_tests.twins import twin_pair
from shared.param_spec import CriticObsActConfig
from shared.precision import as_compute
from shared.settings import LRSchedulerConfig

CRITIC = CriticObsActConfig(cond_dim=5, mlp_dims=(8, 8, 8), action_dim=2, action_steps=3, residual_tyle=True)
SCHEDULE = LRSchedulerConfig(first_cycle_steps=6, warmup_steps=2, min_lr=1e-4).schedule(3e-3)
STEPS, TAU, MAX_NORM, WD = 4, 0.05, 0.5, 0.01


def _batches() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [{"state": as_compute(rng.uniform(-1, 1, (7, 1, 5)).astype(np.float32)),
             "action": as_compute(rng.uniform(-1, 1, (7, 3, 2)).astype(np.float32)),
             "target": as_compute(rng.normal(0, 1, 7).astype(np.float32))} for _ in range(STEPS)]


def _train_torch() -> dict[str, np.ndarray]:
    net, _, _ = twin_pair(CRITIC, seed=3)
    target, _, _ = twin_pair(CRITIC, seed=3)
    opt = TorchScheduledAdamW(list(net.named_parameters()), SCHEDULE.max_lr, WD, SCHEDULE)
    out = {}
    for k, b in enumerate(_batches()):
        q1, q2 = net(torch.from_numpy(b["state"]), torch.from_numpy(b["action"]))
        y = torch.from_numpy(b["target"])
        opt.step(((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean(), MAX_NORM)
        torch_polyak(list(target.parameters()), list(net.parameters()), TAU)
        out[f"lr/{k}"] = np.array(opt.lr)
        opt.end_iteration()
    out.update({f"net/{n}": p.detach().numpy().copy() for n, p in net.named_parameters()})
    out.update({f"target/{n}": p.detach().numpy().copy() for n, p in target.named_parameters()})
    out.update({f"adamw/{n}": v for n, v in opt.state().items()})
    return out


def _train_tf() -> dict[str, np.ndarray]:
    _, net, _ = twin_pair(CRITIC, seed=3)
    _, target, _ = twin_pair(CRITIC, seed=3)
    iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
    named = list(net.named_parameters())
    opt = TFScheduledAdamW(named, WD, SCHEDULE, STEPS, iterations)
    out = {}
    for k, b in enumerate(_batches()):
        with tf.GradientTape() as tape:
            q1, q2 = net(tf.constant(b["state"]), tf.constant(b["action"]))
            loss = tf.reduce_mean(tf.square(q1 - b["target"])) + tf.reduce_mean(tf.square(q2 - b["target"]))
        opt.apply(tape.gradient(loss, opt.variables), MAX_NORM)
        tf_polyak([v for _, v in target.named_parameters()], opt.variables, TAU)
        out[f"lr/{k}"] = np.array(opt.lr)
        iterations.assign_add(1)
    out.update({f"net/{n}": v.numpy() for n, v in named})
    out.update({f"target/{n}": v.numpy() for n, v in target.named_parameters()})
    out.update({f"adamw/{n}": v for n, v in opt.state().items()})
    return out


def test_q_critic_training_with_scheduled_adamw_and_polyak_targets_agrees():
    seen = {}

    def measure():
        a, b = _train_torch(), _train_tf()
        assert a.keys() == b.keys()
        seen.update(a)
        return {("replay_parts", k): (a[k], b[k]) for k in a}

    report = twin_report(measure)
    assert_twins_agree(report)
    assert int(seen["adamw/step"]) == STEPS
    lrs = [float(seen[f"lr/{k}"]) for k in range(STEPS)]
    assert lrs == [SCHEDULE(k) for k in range(STEPS)] and len(set(lrs)) == STEPS  # the rate moved each iteration
    # the target trailed: it moved, but less than the network
    _, _, init = twin_pair(CRITIC, seed=3)
    name = "Q2.layers.0.weight"
    moved_net = np.abs(seen[f"net/{name}"] - init[name]).max()
    moved_target = np.abs(seen[f"target/{name}"] - init[name]).max()
    assert 0 < moved_target < moved_net
