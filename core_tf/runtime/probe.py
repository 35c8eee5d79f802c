"""Run a module on numpy inputs and return everything a parity check compares."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from core_tf.runtime.module import Module
from core_tf.runtime.tracing import record_layer_outputs
from shared.probe_result import Probe


def probe(module: Module, forward: Callable[..., tf.Tensor], inputs: dict[str, np.ndarray],
          cotangent: np.ndarray | None = None) -> Probe:
    """forward(**tensors) -> output; gradients of sum(output * cotangent) (cotangent 1 by default)."""
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    watched = [k for k, v in inputs.items() if v.dtype.kind == "f"]
    names, variables = zip(*module.named_parameters())
    with tf.GradientTape() as tape:
        for k in watched:
            tape.watch(tensors[k])
        with record_layer_outputs(module) as layers:
            out = forward(**tensors)
        weight = tf.ones_like(out) if cotangent is None else tf.constant(cotangent)
        objective = tf.reduce_sum(out * weight)
    grads = tape.gradient(objective, [tensors[k] for k in watched] + list(variables))
    as_np = [np.zeros(tuple(v.shape), tf.as_dtype(v.dtype).as_numpy_dtype) if g is None else g.numpy() for g, v in
             zip(grads, [tensors[k] for k in watched] + list(variables))]
    return Probe(
        layers={k: v.numpy() for k, v in layers.items()},
        output=out.numpy(),
        input_grads=dict(zip(watched, as_np[: len(watched)])),
        param_grads=dict(zip(names, as_np[len(watched):])),
    )
