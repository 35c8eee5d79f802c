"""Compute precision on the torch side (see shared/precision.py): float32, or float64 for parity references."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from shared import precision


def float_dtype() -> torch.dtype:
    return torch.float64 if precision.compute_dtype() is np.float64 else torch.float32


def tensor(a: Any) -> torch.Tensor:
    """numpy data (or a Python number) as a tensor of the compute dtype."""
    return torch.from_numpy(precision.as_compute(a))


@contextmanager
def compute_precision(dtype: type[np.floating]) -> Iterator[None]:
    """Inside the block, modules are built and run in `dtype` (torch's default dtype follows it)."""
    before = torch.get_default_dtype()
    with precision.compute_precision(dtype):
        torch.set_default_dtype(float_dtype())
        try:
            yield
        finally:
            torch.set_default_dtype(before)
