"""Record every sub-module's output by canonical module path (for parity tables)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def record_layer_outputs(module: nn.Module, prefix: str = "") -> Iterator[dict[str, torch.Tensor]]:
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue
        path = f"{prefix}{name}"

        def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor, path: str = path) -> None:
            outputs[path] = out.detach().clone()

        handles.append(sub.register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()
