"""Measured matmul throughput of this machine and the FLOPs of the benchmarked work."""

from __future__ import annotations

import time

import torch

from shared.param_spec import DiffusionMLPConfig, diffusion_mlp_spec


def matmul_gflops(n: int = 1024, repeats: int = 10, trials: int = 5) -> float:
    """fp32 GFLOP/s of an n x n x n torch matmul on all threads: the best of several trials, since
    a busy 2-core machine makes single trials swing by 2x (the machine's practical peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(trials):
        tic = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - tic) / 1e9)
    return best


def forward_flops(cfg: DiffusionMLPConfig, include_time_mlp: bool = False) -> float:
    """Multiply-adds x 2 of one DiffusionMLP forward for one sample (time MLP optional: it is per step)."""
    flops = 0.0
    for name, shape in diffusion_mlp_spec(cfg).items():
        if name.endswith(".weight") and len(shape) == 2 and (include_time_mlp or "time_embedding" not in name):
            flops += 2 * shape[0] * shape[1]
    return flops
