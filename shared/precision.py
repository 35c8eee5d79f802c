"""The twins' compute precision: float32 always, float64 only for the parity gate's reference runs.

The parity gate measures how far float32 rounding alone moves each quantity by running the same
twin once more in float64 (`dppo/parity/engine.py`). Each core reads `compute_dtype()` wherever it turns
numpy data or constants into tensors and where it creates parameters, so a model built and run
inside `compute_precision(np.float64)` computes in float64 end to end (TF refuses mixed dtypes, so a
missed float32 constant there is an error, never a silent rounding).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)
_current: list[type[np.floating]] = [np.float32]


def compute_dtype() -> type[np.floating]:
    return _current[-1]


def as_compute(a: Any) -> np.ndarray:
    """`a` as a numpy array of the compute dtype."""
    return np.asarray(a, dtype=compute_dtype())


@contextmanager
def compute_precision(dtype: type[np.floating]) -> Iterator[None]:
    """Build and run twins in `dtype` (np.float32 or np.float64) inside the block."""
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"compute precision must be float32 or float64, not {dtype}")
    _current.append(dtype)
    try:
        yield
    finally:
        _current.pop()
