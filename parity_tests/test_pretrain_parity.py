"""Pre-training steps in both frameworks from one canonical initialisation and identical
batches, timesteps and noise: losses at every step, parameters and EMA at the end."""

from __future__ import annotations

import numpy as np
import pytest

from core_tf.algorithms.pretrain import PretrainBackend as TFBackend
from core_torch.algorithms.pretrain import PretrainBackend as TorchBackend
from dppo.parity.report import twin_report
from parity_tests.gate import assert_twins_agree
from shared import tolerances as tol
from shared.data.dataset import EpochSampler, gather_batch, load_dppo_dataset, stitched_indices, training_draws
from shared.data.synthetic import write_synthetic_dataset
from shared.lr_schedule import CosineWarmupRestarts
from shared.param_spec import DiffusionMLPConfig, diffusion_mlp_spec, torch_default_init
from shared.precision import as_compute
from shared.settings import DiffusionConfig


@pytest.mark.parametrize("max_grad_norm", [None, 0.5])
def test_twenty_four_optimizer_steps_agree_in_losses_parameters_and_ema(tmp_path, max_grad_norm):
    """End to end (errors compound, and so does the measured budget) and teacher-forced (a second TF
    backend restarts every step from torch's parameters, EMA and optimizer state)."""
    cfg = DiffusionConfig(DiffusionMLPConfig(3, 4, 11, 16, (32, 32, 32), residual_style=True, activation_type="ReLU"),
                          horizon_steps=4, obs_dim=11, action_dim=3, denoising_steps=20)
    data = load_dppo_dataset(write_synthetic_dataset(tmp_path, 11, 3, num_episodes=6), 11, 3, 4)
    indices = stitched_indices(data.traj_lengths, 4)
    sampler = EpochSampler(len(indices), 32, seed=3)
    schedule = CosineWarmupRestarts(first_cycle_steps=4, max_lr=3e-3, min_lr=1e-4, warmup_steps=1)
    init = torch_default_init(diffusion_mlp_spec(cfg.network, "network."), 3)
    kwargs = dict(config=cfg, init_params=init, learning_rate=3e-3, weight_decay=1e-2, schedule=schedule,
                  steps_per_epoch=len(sampler), max_grad_norm=max_grad_norm)
    lrs: dict[str, list[float]] = {}
    first_last: list[float] = []

    def measure():
        backends = {"torch": TorchBackend(**kwargs), "tf": TFBackend(**kwargs, num_epochs=100),
                    "tf_forced": TFBackend(**kwargs, num_epochs=100)}
        lrs.clear()
        lrs.update({name: [] for name in backends})
        losses = {name: [] for name in backends}
        q = {}
        steps = 0
        for epoch in range(1, 100):
            for b, rows in enumerate(sampler.batches(epoch)):
                actions, states = gather_batch(data, indices[rows], 4, 1)
                t, noise = training_draws(3, epoch, b, len(rows), 4, 3, 20)
                actions, states, noise = (as_compute(a) for a in (actions, states, noise))
                backends["tf_forced"].load_groups(backends["torch"].state_groups(), epoch - 1)
                for name, be in backends.items():
                    lrs[name].append(be.lr)
                    losses[name].append(be.train_step(actions, states, t, noise))
                    be.ema_update(0.9) if steps >= 4 else be.ema_reset()
                forced = backends["tf_forced"].state_groups()["model"]
                for pname, value in backends["torch"].state_groups()["model"].items():
                    q[("forced/model", f"{pname} step {steps}")] = (value, forced[pname])
                steps += 1
            for be in backends.values():
                be.end_epoch()
            if steps >= 24:
                break
        assert steps >= 20 and len(set(np.round(lrs["torch"], 12))) > 2  # the schedule moved
        for i, (a, b, c) in enumerate(zip(losses["torch"], losses["tf"], losses["tf_forced"])):
            q[("loss", f"step {i}")] = (a, b)
            q[("forced/loss", f"step {i}")] = (a, c)
        groups = {name: be.state_groups() for name, be in backends.items()}
        for group in ("model", "ema", "optimizer"):
            for pname, value in groups["torch"][group].items():
                q[(group, pname)] = (value, groups["tf"][group][pname])
        first_last[:] = [losses["torch"][0], losses["torch"][-1]]
        return q

    report = twin_report(measure)
    report.add_table("lr", "per step", lrs["torch"], lrs["tf"], tol.SCHEDULE_RTOL)
    assert_twins_agree(report)
    assert first_last[1] < first_last[0]  # it actually trained
