"""Measured matmul throughput of this machine and the FLOPs of the benchmarked work."""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.param_spec import DiffusionMLPConfig
from shared.param_spec.families import network_spec


def _best_gflops(run: Callable[[], object], flops: float, trials: int) -> float:
    """Best of `trials` timings of run() (doing `flops`): a busy 2-core machine makes single
    trials swing by 2x, so the best one is the machine's practical peak."""
    for _ in range(2):
        run()
    best = 0.0
    for _ in range(trials):
        tic = time.perf_counter()
        run()
        best = max(best, flops / (time.perf_counter() - tic) / 1e9)
    return best


def matmul_gflops(n: int = 1024, repeats: int = 10, trials: int = 5) -> dict[str, float]:
    """fp32 GFLOP/s of n x n x n products on all threads by each library that can run them here:
    torch's default (MKL), torch through oneDNN, TensorFlow/XLA. The roofline uses the best of them;
    MKL's AVX2 path on AMD CPUs reaches only half of what the machine does."""
    return chained_matmul_gflops(n, n, repeats, trials)


def chained_matmul_gflops(rows: int, width: int, steps: int = 40, trials: int = 5) -> dict[str, float]:
    """fp32 GFLOP/s of `steps` dependent (rows, width) x (width, width) products, the shape of the
    hidden layers in the benchmarked work, per library (TF's inside one XLA call, so call overhead
    is not counted). Small row counts cannot reach the big-matmul peak: this is the roofline at
    the work's own shape (memory-bound at one row)."""
    import tensorflow as tf
    import torch

    from core_torch.networks.linear import _onednn_matmul, onednn_enabled

    w = torch.randn(width, width) / width**0.5
    x = torch.randn(rows, width)

    def torch_chain(mm: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        def run() -> torch.Tensor:
            h = x
            for _ in range(steps):
                h = mm(h)
            return h
        return run

    tw, tx = tf.constant(w.numpy()), tf.constant(x.numpy())

    @tf.function(jit_compile=True)
    def tf_chain(h: tf.Tensor) -> tf.Tensor:
        for _ in range(steps):
            h = tf.matmul(h, tw, transpose_b=True)
        return h

    flops = 2.0 * rows * width * width * steps
    out = {}
    with torch.no_grad():
        out["torch_mkl"] = _best_gflops(torch_chain(lambda h: torch.nn.functional.linear(h, w)), flops, trials)
        if onednn_enabled():
            out["torch_onednn"] = _best_gflops(torch_chain(lambda h: _onednn_matmul(h, w, None)), flops, trials)
    out["tf_xla"] = _best_gflops(lambda: tf_chain(tx).numpy(), flops, trials)
    return out


def forward_flops(cfg: DiffusionMLPConfig, include_time_mlp: bool = False) -> float:
    """Multiply-adds x 2 of one DiffusionMLP forward for one sample (time MLP optional: it is per step)."""
    flops = 0.0
    for name, shape in network_spec(cfg).items():
        if name.endswith(".weight") and len(shape) == 2 and (include_time_mlp or "time_embedding" not in name):
            flops += 2 * shape[0] * shape[1]
    return flops
