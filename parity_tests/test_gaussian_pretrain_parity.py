"""Gaussian pre-training steps in both frameworks from one canonical initialisation and identical batches:
losses and entropies at every step, parameters, EMA and optimizer state at the end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core_tf.algorithms.pretrain import GaussianPretrainBackend as TFBackend
from core_torch.algorithms.pretrain import GaussianPretrainBackend as TorchBackend
from dppo.parity.report import twin_report
from parity_tests.gate import assert_twins_agree
from shared import tolerances as tol
from shared.data.dataset import EpochSampler, gather_batch, load_dppo_dataset, stitched_indices
from shared.data.synthetic import write_synthetic_dataset
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import GaussianMLPConfig, gaussian_mlp_spec, torch_default_init
from shared.precision import as_compute
from shared.settings import GaussianModelConfig

NETWORKS = {
    "learned_std": (GaussianMLPConfig(3, 2, 22, (32, 32), std_min=0.05, std_max=0.8, residual_style=True,
                                      activation_type="ReLU"), 0.01),
    "learn_fixed_std": (GaussianMLPConfig(3, 2, 22, (32, 32, 32), fixed_std=0.2, learn_fixed_std=True), 0.0),
}


@pytest.mark.parametrize("network", list(NETWORKS))
def test_twenty_four_gaussian_pretraining_steps_agree_in_losses_parameters_and_ema(tmp_path, network):
    net, ent_coef = NETWORKS[network]
    cfg = GaussianModelConfig(network=net, horizon_steps=2)
    data = load_dppo_dataset(write_synthetic_dataset(tmp_path, 11, 3, num_episodes=6), 11, 3, 2)
    indices = stitched_indices(data.traj_lengths, 2)
    sampler = EpochSampler(len(indices), 32, seed=5)
    schedule = CosineWarmupRestarts(first_cycle_steps=4, max_lr=3e-3, min_lr=1e-4, warmup_steps=1)
    overrides = {"network.logvar": math.log(net.fixed_std**2)} if net.learn_fixed_std else None
    init = torch_default_init(gaussian_mlp_spec(net, "network."), 5, overrides)
    kwargs = dict(config=cfg, init_params=init, learning_rate=3e-3, weight_decay=1e-2, schedule=schedule,
                  steps_per_epoch=len(sampler), ent_coef=ent_coef)
    lrs: dict[str, list[float]] = {}
    first_last: list[float] = []

    def measure():
        backends = {"torch": TorchBackend(**kwargs), "tf": TFBackend(**kwargs, num_epochs=100)}
        lrs.clear()
        lrs.update({name: [] for name in backends})
        losses = {name: [] for name in backends}
        entropies = {name: [] for name in backends}
        steps = 0
        for epoch in range(1, 100):
            for rows in sampler.batches(epoch):
                actions, states = (as_compute(a) for a in gather_batch(data, indices[rows], 2, 2))
                for name, be in backends.items():
                    lrs[name].append(be.lr)
                    losses[name].append(be.train_step(actions, states))
                    entropies[name].append(be.step_metrics()["entropy"])
                    be.ema_update(0.9) if steps >= 4 else be.ema_reset()
                steps += 1
            for be in backends.values():
                be.end_epoch()
            if steps >= 24:
                break
        assert steps >= 20 and len(set(np.round(lrs["torch"], 12))) > 2  # the schedule moved
        q = {}
        for i in range(steps):
            q[("loss", f"step {i}")] = (losses["torch"][i], losses["tf"][i])
            q[("entropy", f"step {i}")] = (entropies["torch"][i], entropies["tf"][i])
        groups = {name: be.state_groups() for name, be in backends.items()}
        for group in ("model", "ema", "optimizer"):
            for pname, value in groups["torch"][group].items():
                q[(group, pname)] = (value, groups["tf"][group][pname])
        first_last[:] = [losses["torch"][0], losses["torch"][-1], entropies["torch"][0], entropies["torch"][-1]]
        return q

    report = twin_report(measure)
    report.add_table("lr", "per step", lrs["torch"], lrs["tf"], tol.SCHEDULE_RTOL)
    assert_twins_agree(report)
    assert first_last[1] < first_last[0]  # it actually trained
    assert first_last[3] != first_last[2]  # and the std with it
