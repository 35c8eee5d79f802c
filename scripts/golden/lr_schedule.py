"""Section `lr_schedule`: learning rates of upstream util/scheduler.py CosineAnnealingWarmupRestarts,
read after each of a few hundred step() calls (index 0: before any step), for several settings."""

from __future__ import annotations

import numpy as np

from scripts.golden.common import Context

STEPS = 300
SETTINGS = {
    "plain": dict(first_cycle_steps=100, max_lr=1e-3, min_lr=1e-5, warmup_steps=0),
    "warmup": dict(first_cycle_steps=60, max_lr=3e-4, min_lr=1e-5, warmup_steps=10),
    "cycle_mult": dict(first_cycle_steps=40, max_lr=1e-3, min_lr=1e-4, warmup_steps=5, cycle_mult=1.5),
    "gamma": dict(first_cycle_steps=50, max_lr=1e-3, min_lr=1e-5, warmup_steps=3, gamma=0.7),
    "all": dict(first_cycle_steps=30, max_lr=2e-3, min_lr=2e-4, warmup_steps=7, cycle_mult=2.0, gamma=0.5),
}


def build(ctx: Context) -> None:
    import torch
    from util.scheduler import CosineAnnealingWarmupRestarts

    for name, kw in SETTINGS.items():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=kw["max_lr"])
        sched = CosineAnnealingWarmupRestarts(opt, **kw)
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(STEPS - 1):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        lr = np.array(lrs, np.float64)  # upstream computes in Python floats: its float64 run is itself
        ctx.case(name, {"kind": "schedule", "settings": kw, "steps": STEPS}, {}, {"lr": lr}, {"lr": lr})
