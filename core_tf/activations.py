"""Activation layers by upstream name, matching torch's definitions."""

from __future__ import annotations

import tensorflow as tf

from core_tf.module import Module


def _mish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.tanh(tf.math.softplus(x))


_FUNCTIONS = {
    "ReLU": tf.nn.relu,
    "ELU": tf.nn.elu,
    "GELU": lambda x: tf.nn.gelu(x, approximate=False),  # torch's default is the exact erf form
    "Tanh": tf.tanh,
    "Mish": _mish,
    "Identity": tf.identity,
    "Softplus": tf.math.softplus,
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
