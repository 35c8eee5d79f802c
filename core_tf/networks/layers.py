"""Linear, LayerNorm and Dropout with torch's parameter layout and defaults."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from core_tf.runtime.module import Module
from core_tf.runtime.rng import dropout_generator


class Linear(Module):
    """y = x W^T + b with W (out, in), initialised like torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features: int, out_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        bound = 1.0 / math.sqrt(in_features)
        init = keras.initializers.RandomUniform(-bound, bound)
        self.weight = self.add_param("weight", (out_features, in_features), init)
        self.bias = self.add_param("bias", (out_features,), init)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.weight, transpose_b=True) + self.bias


class LayerNorm(Module):
    """Normalise the last axis with the biased variance, eps inside the sqrt (as torch)."""

    def __init__(self, dim: int, eps: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eps = eps
        self.weight = self.add_param("weight", (dim,), keras.initializers.Ones())
        self.bias = self.add_param("bias", (dim,), keras.initializers.Zeros())
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + self.eps) * self.weight + self.bias


class Dropout(Module):
    """Inverted dropout, as torch.nn.Dropout; masks drawn from core_tf.runtime.rng's seeded generator."""

    def __init__(self, rate: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if training and self.rate > 0:
            seed = dropout_generator().make_seeds(1)[:, 0]
            return tf.nn.experimental.stateless_dropout(x, rate=self.rate, seed=seed)
        return x


class Sequential(Module):
    """Children named by position ('0', '1', ...) like torch.nn.Sequential, or by given names."""

    def __init__(self, layers: list[tuple[str, Module]] | list[Module], **kwargs) -> None:
        super().__init__(**kwargs)
        for i, item in enumerate(layers):
            name, layer = item if isinstance(item, tuple) else (str(i), item)
            self.add_child(name, layer)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        for _, layer in self.named_children():
            x = layer(x)  # Keras passes `training` down to Dropout through its call context
        return x
