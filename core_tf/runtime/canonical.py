"""Moving parameters between a Keras Module and canonical numpy dicts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from core_tf.runtime.module import Module
from shared.checkpoint import check_strict


def parameter_shapes(module: Module) -> OrderedDict:
    return OrderedDict((name, tuple(v.shape)) for name, v in module.named_parameters())


def export_state(module: Module) -> OrderedDict:
    """Canonical name -> numpy copy of every parameter (float32; float64 in a float64 parity reference)."""
    return OrderedDict((name, np.array(v.numpy(), copy=True)) for name, v in module.named_parameters())


def load_state(module: Module, state: Mapping[str, np.ndarray], what: str = "model") -> None:
    """Copy a canonical dict into the module; strict on names and shapes."""
    check_strict(parameter_shapes(module), state, what)
    for name, v in module.named_parameters():
        v.assign(np.asarray(state[name], dtype=tf.as_dtype(v.dtype).as_numpy_dtype))
