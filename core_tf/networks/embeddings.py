"""Sinusoidal embedding of the diffusion timestep (twin of core_torch/networks/embeddings.py)."""

from __future__ import annotations

import tensorflow as tf

from core_tf.runtime.module import Module
from core_tf.runtime.precision import constant
from shared.diffusion.schedule import sinusoidal_frequencies


class SinusoidalPosEmb(Module):
    """(B,) timesteps -> (B, dim) = [sin(t f), cos(t f)], f from shared/."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.freqs = constant(sinusoidal_frequencies(dim))

    def call(self, t: tf.Tensor) -> tf.Tensor:
        angles = tf.cast(t, self.freqs.dtype)[:, None] * self.freqs[None, :]  # (B, dim/2)
        return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)
