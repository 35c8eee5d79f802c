"""AdamW with torch's exact update order, gradient clipping, and canonical optimizer state.

Keras's AdamW adds epsilon before the bias correction of the second moment; torch adds
it after. This optimizer follows torch, step for step:
    p *= 1 - lr*wd;  m = m + (1-b1)(g - m);  v = b2 v + (1-b2) g^2
    p -= lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

BETAS, EPS = (0.9, 0.999), 1e-8


class AdamW(tf.Module):
    def __init__(self, named: Sequence[tuple[str, tf.Variable]], weight_decay: float) -> None:
        super().__init__()
        self.names = [n for n, _ in named]
        self.weight_decay = float(weight_decay)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.exp_avg = [tf.Variable(tf.zeros_like(v), trainable=False) for _, v in named]
        self.exp_avg_sq = [tf.Variable(tf.zeros_like(v), trainable=False) for _, v in named]

    def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable], lr: tf.Tensor) -> None:
        b1, b2 = BETAS
        self.step.assign_add(1)
        k = tf.cast(self.step, lr.dtype)
        bias1 = 1.0 - tf.pow(tf.constant(b1, k.dtype), k)
        bias2_sqrt = tf.sqrt(1.0 - tf.pow(tf.constant(b2, k.dtype), k))
        for g, p, m, v in zip(grads, variables, self.exp_avg, self.exp_avg_sq):
            p.assign(p * (1.0 - lr * self.weight_decay))
            m.assign(m + (1.0 - b1) * (g - m))
            v.assign(v * b2 + (1.0 - b2) * g * g)
            p.assign_sub((lr / bias1) * m / (tf.sqrt(v) / bias2_sqrt + EPS))

    def state(self) -> OrderedDict:
        out: OrderedDict = OrderedDict()
        for name, m, v in zip(self.names, self.exp_avg, self.exp_avg_sq):
            out[f"exp_avg/{name}"] = m.numpy().copy()
            out[f"exp_avg_sq/{name}"] = v.numpy().copy()
        out["step"] = np.array(int(self.step.numpy()), np.int64)
        return out

    def load_state(self, state: dict) -> None:
        self.step.assign(int(state["step"]))
        for name, m, v in zip(self.names, self.exp_avg, self.exp_avg_sq):
            m.assign(np.asarray(state[f"exp_avg/{name}"], m.dtype.as_numpy_dtype))
            v.assign(np.asarray(state[f"exp_avg_sq/{name}"], v.dtype.as_numpy_dtype))


def clip_grad_norm(grads: Sequence[tf.Tensor], max_norm: float | None) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Scale all gradients by min(1, max_norm / (global_norm + 1e-6)), as torch does."""
    norm = tf.norm(tf.stack([tf.norm(g) for g in grads]))
    if max_norm is None:
        return list(grads), norm
    scale = tf.minimum(max_norm / (norm + 1e-6), 1.0)
    return [g * scale for g in grads], norm
