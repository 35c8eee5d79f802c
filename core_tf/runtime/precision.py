"""Compute precision on the TF side (see shared/precision.py): float32, or float64 for parity references."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf

from shared import precision


def float_dtype() -> tf.DType:
    return tf.as_dtype(precision.compute_dtype())


def constant(a: Any) -> tf.Tensor:
    """numpy data (or a Python number) as a constant of the compute dtype."""
    return tf.constant(precision.as_compute(a))


@contextmanager
def compute_precision(dtype: type[np.floating]) -> Iterator[None]:
    """Inside the block, modules are built and run in `dtype` (TF refuses mixed dtypes: nothing slips)."""
    with precision.compute_precision(dtype):
        yield
