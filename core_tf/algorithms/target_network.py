"""Target networks: a frozen copy of a network's parameters that trails it by Polyak averaging."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def polyak_update(target: Sequence[tf.Variable], source: Sequence[tf.Variable], tau: float) -> None:
    """target <- target * (1 - tau) + source * tau, parameter by parameter (upstream's soft update)."""
    for t, s in zip(target, source, strict=True):
        t.assign(t * (1.0 - tau) + s * tau)
