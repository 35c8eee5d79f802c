"""TF's random stream (dropout masks), reseeded per epoch / iteration: see shared/framework_seeds.py.

core_tf.networks.layers.Dropout draws its masks from this one generator (a variable, so compiled steps see
every reseed), never from TF's global seed, whose op-level streams a compiled function fixes at
trace time."""

from __future__ import annotations

import tensorflow as tf

_GENERATOR: tf.random.Generator | None = None


def dropout_generator() -> tf.random.Generator:
    global _GENERATOR
    if _GENERATOR is None:
        with tf.init_scope():  # created eagerly even when first asked for inside a tf.function trace
            _GENERATOR = tf.random.Generator.from_seed(0)
    return _GENERATOR


def seed_dropout(seed: int) -> None:
    """Reseed the generator Dropout draws from."""
    dropout_generator().reset_from_seed(seed)
