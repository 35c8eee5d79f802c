"""Linear, LayerNorm, Dropout, Conv1d, ConvTranspose1d, Conv2d and GroupNorm with torch's parameter layout and
defaults.

The convolutions and GroupNorm take torch's channels-first (B, C, L) / (B, C, H, W) tensors, so a network built
from them traces the same layer outputs as its torch twin; TF's own convolutions are channels-last, so each one
transposes in and out (XLA folds the transposes into the convolution).
"""

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


def _conv_init(fan_in: int) -> keras.initializers.Initializer:
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def _channels_last(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, [0, 2, 1])  # (B, C, L) <-> (B, L, C)


class Conv1d(Module):
    """torch.nn.Conv1d: weight (out, in, k), bias (out,); zeros padded on both ends; (B, C_in, L) -> (B, C_out, L')
    with L' = (L + 2 padding - k) // stride + 1. Initialised like torch: U(-1/sqrt(in k), 1/sqrt(in k))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride, self.padding = stride, padding
        init = _conv_init(in_channels * kernel_size)
        self.weight = self.add_param("weight", (out_channels, in_channels, kernel_size), init)
        self.bias = self.add_param("bias", (out_channels,), init)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        h = _channels_last(x)  # (B, L, C_in)
        if self.padding:
            h = tf.pad(h, [[0, 0], [self.padding, self.padding], [0, 0]])
        filters = tf.transpose(self.weight, [2, 1, 0])  # (k, in, out): TF's layout
        y = tf.nn.conv1d(h, filters, stride=self.stride, padding="VALID") + self.bias  # (B, L', C_out)
        return _channels_last(y)


class ConvTranspose1d(Module):
    """torch.nn.ConvTranspose1d: weight (in, out, k), bias (out,); (B, C_in, L) -> (B, C_out, L') with
    L' = (L - 1) stride - 2 padding + k: the full transposed convolution ((L - 1) stride + k long), `padding`
    cropped from each end (TF's 'SAME' crops k - stride split low end first: the same only when that is 2 padding,
    as for the U-Net's k 4, stride 2, padding 1). Initialised like torch, fan_in = out k."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride, self.padding, self.kernel_size, self.out_channels = stride, padding, kernel_size, out_channels
        init = _conv_init(out_channels * kernel_size)
        self.weight = self.add_param("weight", (in_channels, out_channels, kernel_size), init)
        self.bias = self.add_param("bias", (out_channels,), init)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        h = _channels_last(x)  # (B, L, C_in)
        B, L = tf.shape(h)[0], tf.shape(h)[1]
        full = (L - 1) * self.stride + self.kernel_size
        filters = tf.transpose(self.weight, [2, 1, 0])  # (k, out, in): TF's layout for the transposed conv
        y = tf.nn.conv1d_transpose(h, filters, tf.stack([B, full, self.out_channels]), strides=self.stride,
                                   padding="VALID")  # (B, full, C_out)
        y = y[:, self.padding : full - self.padding] + self.bias
        return _channels_last(y)


class Conv2d(Module):
    """torch.nn.Conv2d without padding: weight (out, in, k, k), bias (out,); (B, C_in, H, W) -> (B, C_out, H', W')
    with H' = (H - k) // stride + 1. Initialised like torch: U(-1/sqrt(in k k), 1/sqrt(in k k))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stride = stride
        init = _conv_init(in_channels * kernel_size * kernel_size)
        self.weight = self.add_param("weight", (out_channels, in_channels, kernel_size, kernel_size), init)
        self.bias = self.add_param("bias", (out_channels,), init)
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        h = tf.transpose(x, [0, 2, 3, 1])  # (B, H, W, C_in)
        filters = tf.transpose(self.weight, [2, 3, 1, 0])  # (k, k, in, out): TF's layout
        y = tf.nn.conv2d(h, filters, strides=self.stride, padding="VALID") + self.bias  # (B, H', W', C_out)
        return tf.transpose(y, [0, 3, 1, 2])


class GroupNorm(Module):
    """torch.nn.GroupNorm on (B, C, ...): each sample's C / groups consecutive channels (and all positions)
    normalised with the biased variance, eps inside the sqrt; then a per-channel scale and shift."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups, self.eps = num_groups, eps
        self.weight = self.add_param("weight", (num_channels,), keras.initializers.Ones())
        self.bias = self.add_param("bias", (num_channels,), keras.initializers.Zeros())
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(x)
        g = tf.reshape(x, [shape[0], self.groups, -1])  # (B, G, C / G * L)
        mean, var = tf.nn.moments(g, axes=[2], keepdims=True)
        y = tf.reshape((g - mean) * tf.math.rsqrt(var + self.eps), shape)  # (B, C, ...)
        per_channel = [-1] + [1] * (x.shape.rank - 2)  # (C, 1, ...)
        return y * tf.reshape(self.weight, per_channel) + tf.reshape(self.bias, per_channel)
