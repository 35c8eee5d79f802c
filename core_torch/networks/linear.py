"""nn.Linear whose matmuls go through oneDNN for CPU batches.

Why: torch sends dense fp32 CPU matmuls to MKL, and MKL runs its AVX2 kernels on non-Intel
x86 CPUs; oneDNN compiles its kernels for the CPU it runs on. On the project's 2-core AMD EPYC
(AVX-512) a (5000, 512) x (512, 512) product takes 6 ms through oneDNN against 13 ms through MKL,
in the forward and in both backward products (`dppo bench` shows the effect on whole steps).
Single rows (batch-1 sampling) stay on MKL's matrix-vector kernel, which is faster there.

Same parameters and names as nn.Linear (checkpoints do not change); outputs and gradients equal
F.linear up to float rounding (tests/torch/test_linear.py). DPPO_TORCH_ONEDNN=0 turns it off.
The TF twin is core_tf/networks/layers.py's Linear: TF's MatMul and XLA's dot already compile for the CPU.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import nn
from torch.nn import functional as F

MIN_ROWS = 8  # below this MKL's gemv wins (batch-1 sampling)
MIN_MACS = 2**18  # below this oneDNN's call overhead (~20 us) outweighs the faster kernel (time MLP)


def _onednn_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (N, in) @ weight (out, in)^T + bias: oneDNN's fused linear; strided (transposed) views are fine."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@functools.cache
def onednn_enabled() -> bool:
    """On unless DPPO_TORCH_ONEDNN=0 or this torch build lacks oneDNN's linear (probed once)."""
    if os.environ.get("DPPO_TORCH_ONEDNN", "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    try:
        x, w = torch.ones(2, 3), torch.ones(4, 3)
        return bool(torch.equal(_onednn_matmul(x, w, None), F.linear(x, w)))
    except (AttributeError, RuntimeError):
        return False


class _OneDNNLinearFunction(torch.autograd.Function):
    """y = x W^T + b; backward dx = g W, dW = g^T x, db = sum_N g, all through oneDNN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_matmul(x, weight, bias)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # g (N, out)
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        # create_graph (grad mode on here: the gradient is differentiated again, as the exact likelihood's
        # divergence term is): oneDNN's linear has no autograd kernel, so take torch's differentiable matmul
        mm = (lambda a, b, _: F.linear(a, b)) if torch.is_grad_enabled() else _onednn_matmul
        gx = mm(g, weight.t(), None) if need_x else None  # (N, in)
        gw = mm(g.t(), x.t(), None) if need_w else None  # (out, in)
        gb = g.sum(0) if ctx.has_bias and need_b else None
        return gx, gw, gb


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear, through oneDNN for float32 CPU batches of at least MIN_ROWS rows and MIN_MACS work."""
    if torch.compiler.is_compiling():  # inductor cannot lower oneDNN's linear on plain weights
        return F.linear(x, weight, bias)
    rows = x.numel() // max(x.shape[-1], 1)
    big = rows >= MIN_ROWS and rows * weight.numel() >= MIN_MACS
    if not (big and x.device.type == "cpu" and x.dtype == torch.float32 and onednn_enabled()):
        return F.linear(x, weight, bias)
    y = _OneDNNLinearFunction.apply(x.reshape(rows, x.shape[-1]), weight, bias)
    return y.reshape(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
