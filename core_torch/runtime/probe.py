"""Run a module on numpy inputs and return everything a parity check compares."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core_torch.runtime.tracing import record_layer_outputs
from shared.probe_result import Probe


def probe(module: nn.Module, forward: Callable[..., torch.Tensor], inputs: dict[str, np.ndarray],
          cotangent: np.ndarray | None = None) -> Probe:
    """forward(**tensors) -> output; gradients of sum(output * cotangent) (cotangent 1 by default)."""
    tensors = {k: torch.tensor(v, requires_grad=v.dtype.kind == "f") for k, v in inputs.items()}
    module.zero_grad(set_to_none=True)
    with record_layer_outputs(module) as layers:
        out = forward(**tensors)
    weight = torch.ones_like(out) if cotangent is None else torch.from_numpy(cotangent)
    (out * weight).sum().backward()
    return Probe(
        layers={k: v.numpy() for k, v in layers.items()},
        output=out.detach().numpy(),
        input_grads={k: t.grad.numpy() for k, t in tensors.items() if t.requires_grad},
        param_grads={n: (np.zeros(tuple(p.shape), p.detach().numpy().dtype) if p.grad is None else p.grad.numpy())
                     for n, p in module.named_parameters()},
    )
