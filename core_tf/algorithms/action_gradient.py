"""DIPO's action gradient (TF side; twin of core_torch/algorithms/action_gradient.py): replayed action chunks
moved uphill on min(Q1, Q2) by a few Adam steps on the actions themselves. Adam is written out in
torch's exact update order (torch.optim.Adam, single-tensor path, no weight decay):
    m = m + (1-b1)(g - m);  v = b2 v + (1-b2) g^2
    p += -(lr / (1 - b1^k)) * (m / (sqrt(v) / sqrt(1 - b2^k) + eps))
with the bias corrections computed in Python floats, as torch does.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from core_tf.runtime.optim import clip_grad_norm

ACTION_ADAM_EPS = 1e-5  # upstream's Adam on actions: lr = action_lr, eps = 1e-5, default betas, no decay
BETAS = (0.9, 0.999)


def adam_step(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, k: int, lr: float,
              eps: float = ACTION_ADAM_EPS) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Step k (1-based) of torch's Adam on one tensor: (p, m, v) after gradient g."""
    b1, b2 = BETAS
    m = m + (1.0 - b1) * (g - m)
    v = v * b2 + (1.0 - b2) * g * g
    step_size = lr / (1.0 - b1**k)
    bias2_sqrt = (1.0 - b2**k) ** 0.5
    return p + (-step_size) * (m / (tf.sqrt(v) / bias2_sqrt + eps)), m, v


def improve_actions(critic: Any, obs: tf.Tensor, actions: tf.Tensor, lr: float, steps: int,
                    max_norm: float) -> tf.Tensor:
    """obs (B, To, Do), actions (B, Ta, Da) -> improved actions (B, Ta, Da); see the torch twin."""
    shape = tf.shape(actions)
    flat = tf.reshape(actions, [shape[0], shape[1] * shape[2]])  # (B, Ta*Da)
    m, v = tf.zeros_like(flat), tf.zeros_like(flat)
    for k in range(1, steps + 1):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            q1, q2 = critic(obs, flat)
            loss = -tf.reduce_sum(tf.minimum(q1, q2))
        (g,), _ = clip_grad_norm([tape.gradient(loss, flat)], max_norm)
        flat, m, v = adam_step(flat, g, m, v, k, lr)
        flat = tf.clip_by_value(flat, -1.0, 1.0)
    return tf.reshape(flat, shape)
