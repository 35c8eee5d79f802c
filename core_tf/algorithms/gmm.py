"""A GMM policy (upstream model/common/gmm.py GMMModel), TF side (twin of core_torch/algorithms/gmm.py): the
mixture's log-density, its approximate entropy and mean std, sampling from numpy's draws, and the pre-training
loss. Any network giving (means, stds, logits) works.

Shapes: B rows, M modes, D = Ta * Da (the flattened action chunk). A network of role "gmm" maps states
(B, To, Do) to means (B, M, D), stds (B, M, D) and mixture logits (B, M).
"""

from __future__ import annotations

import tensorflow as tf

from core_tf.algorithms.ppo_loss import normal_entropy, normal_logprob
from core_tf.runtime.module import Module
from shared.algorithms.gmm import DETERMINISTIC_STD


def mixture_logprob(x: tf.Tensor, means: tf.Tensor, stds: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """log p(x) (B,) of x (B, D): logsumexp over modes of log softmax(logits) + that mode's diagonal Normal
    log-density."""
    component = tf.reduce_sum(normal_logprob(x[:, None, :], means, stds), -1)  # (B, M)
    return tf.reduce_logsumexp(tf.nn.log_softmax(logits, -1) + component, -1)


def mixture_entropy(stds: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Upstream's approximate entropy (scalar): the batch mean of the weight-averaged modes' entropies."""
    component = tf.reduce_sum(normal_entropy(stds), -1)  # (B, M)
    return tf.reduce_mean(tf.reduce_sum(tf.nn.softmax(logits, -1) * component, -1))


def mixture_std(stds: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """The std upstream logs (scalar): the batch mean of the weight-averaged modes' mean stds."""
    return tf.reduce_mean(tf.reduce_sum(tf.nn.softmax(logits, -1) * tf.reduce_mean(stds, -1), -1))


def choose_modes(logits: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Mode index (B,) drawn from Categorical(logits) (B, M) by inverse CDF at u (B,) in [0, 1)."""
    cdf = tf.cumsum(tf.nn.softmax(logits, -1), -1)  # (B, M)
    count = tf.reduce_sum(tf.cast(cdf <= u[:, None], tf.int32), -1)
    return tf.minimum(count, logits.shape[-1] - 1)


def sample_mixture(means: tf.Tensor, stds: tf.Tensor, logits: tf.Tensor, eps: tf.Tensor, u: tf.Tensor,
                   deterministic: bool) -> tf.Tensor:
    """A chunk (B, D) per row: mode k from u, then means[k] + stds[k] * eps (eps (B, D)); deterministic replaces
    every std by DETERMINISTIC_STD (upstream still samples the mode and the noise)."""
    k = choose_modes(logits, u)  # (B,)
    mean = tf.gather(means, k, axis=1, batch_dims=1)  # (B, D)
    std = tf.fill(tf.shape(mean), tf.constant(DETERMINISTIC_STD, mean.dtype)) if deterministic else tf.gather(
        stds, k, axis=1, batch_dims=1)
    return mean + std * eps


def likeliest_mean(means: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """The mean (B, D) of each row's most likely mode (the largest logit; the first on a tie): the policy's
    noiseless action (served deterministically; upstream's deterministic acting still draws the mode)."""
    return tf.gather(means, tf.argmax(logits, -1, output_type=tf.int32), axis=1, batch_dims=1)


class GMMModel(Module):
    """Upstream GMMModel's training half: the network under `network.` and its loss."""

    def __init__(self, network: Module, **kwargs) -> None:
        super().__init__(**kwargs)
        self.network = self.add_child("network", network)
        self.built = True

    def loss(self, actions: tf.Tensor, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(loss, approximate entropy) of actions (B, Ta, Da) given states (B, To, Do): the mean negative mixture
        log-density of the flattened chunks (upstream takes no entropy bonus here)."""
        means, stds, logits = self.network(states)
        logprob = mixture_logprob(tf.reshape(actions, [tf.shape(actions)[0], -1]), means, stds, logits)  # (B,)
        return -tf.reduce_mean(logprob), mixture_entropy(stds, logits)
