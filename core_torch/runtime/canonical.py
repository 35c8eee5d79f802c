"""Moving parameters between a torch module and canonical numpy dicts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from shared.checkpoint import check_strict


def parameter_shapes(module: nn.Module) -> OrderedDict:
    return OrderedDict((name, tuple(p.shape)) for name, p in module.named_parameters())


def export_state(module: nn.Module) -> OrderedDict:
    """Canonical name -> numpy copy of every parameter (float32; float64 in a float64 parity reference)."""
    return OrderedDict((name, p.detach().cpu().numpy().copy())
                       for name, p in module.named_parameters())


@torch.no_grad()
def load_state(module: nn.Module, state: Mapping[str, np.ndarray], what: str = "model") -> None:
    """Copy a canonical dict into the module; strict on names and shapes."""
    check_strict(parameter_shapes(module), state, what)
    for name, p in module.named_parameters():
        p.copy_(torch.from_numpy(np.asarray(state[name], dtype=p.detach().cpu().numpy().dtype)))
