"""Measured matmul throughput of this machine and the FLOPs of the benchmarked work."""

from __future__ import annotations

import time

import torch

from shared.param_spec import DiffusionMLPConfig, diffusion_mlp_spec


def matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    """fp32 GFLOP/s of an n x n x n torch matmul on all threads (the machine's practical peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    tic = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - tic) / 1e9


def forward_flops(cfg: DiffusionMLPConfig, include_time_mlp: bool = False) -> float:
    """Multiply-adds x 2 of one DiffusionMLP forward for one sample (time MLP optional: it is per step)."""
    flops = 0.0
    for name, shape in diffusion_mlp_spec(cfg).items():
        if name.endswith(".weight") and len(shape) == 2 and (include_time_mlp or "time_embedding" not in name):
            flops += 2 * shape[0] * shape[1]
    return flops
