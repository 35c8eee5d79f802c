"""Activation layers by upstream name, matching torch's definitions."""

from __future__ import annotations

import math

import tensorflow as tf

from core_tf.runtime.module import Module

TORCH_SOFTPLUS_THRESHOLD = 20.0


def _softplus(x: tf.Tensor) -> tf.Tensor:
    """torch's Softplus: log(1 + e^x), and x itself above threshold 20 (TF's own switches at another
    point; the two differ by up to e^-20 ~ 2e-9 relative, seen by the float64 parity rule)."""
    return tf.where(x > TORCH_SOFTPLUS_THRESHOLD, x, tf.math.softplus(tf.minimum(x, TORCH_SOFTPLUS_THRESHOLD)))


def _gelu(x: tf.Tensor) -> tf.Tensor:
    """torch's default (exact) GELU, x/2 (1 + erf(x / sqrt 2)), written out: tf.nn.gelu(approximate=False)
    is 5e-9 off it in float64 (the float64 parity rule saw it)."""
    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


def _mish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.tanh(_softplus(x))


_FUNCTIONS = {
    "ReLU": tf.nn.relu,
    "ELU": tf.nn.elu,
    "GELU": _gelu,
    "Tanh": tf.tanh,
    "Mish": _mish,
    "Identity": tf.identity,
    "Softplus": _softplus,
    "SiLU": tf.nn.silu,  # x sigmoid(x), as torch.nn.SiLU
}


class Activation(Module):
    def __init__(self, activation_type: str, **kwargs) -> None:
        if activation_type not in _FUNCTIONS:
            raise ValueError(f"unknown activation {activation_type!r}; choose one of {', '.join(_FUNCTIONS)}")
        super().__init__(**kwargs)
        self.activation_type = activation_type
        self.fn = _FUNCTIONS[activation_type]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.fn(x)


def make_activation(name: str) -> Activation:
    return Activation(name)
