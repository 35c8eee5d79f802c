"""Sinusoidal embedding of the diffusion timestep (twin of core_torch/embeddings.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core_tf.module import Module
from shared.diffusion_schedule import sinusoidal_frequencies


class SinusoidalPosEmb(Module):
    """(B,) timesteps -> (B, dim) = [sin(t f), cos(t f)], f from shared/."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim
        self.freqs = tf.constant(sinusoidal_frequencies(dim).astype(np.float32))

    def call(self, t: tf.Tensor) -> tf.Tensor:
        angles = tf.cast(t, tf.float32)[:, None] * self.freqs[None, :]  # (B, dim/2)
        return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)
