"""PPO loss terms shared by the Gaussian and the diffusion policy (twin of core_torch/algorithms/ppo_loss.py)."""

from __future__ import annotations

import math

import tensorflow as tf

LOGPROB_MIN, LOGPROB_MAX = -5.0, 2.0  # upstream clamps log-probabilities to this range
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_logprob(x: tf.Tensor, mean: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
    return -tf.square(x - mean) / (2 * tf.square(std)) - tf.math.log(std) - HALF_LOG_2PI


def normal_entropy(std: tf.Tensor) -> tf.Tensor:
    return 0.5 + HALF_LOG_2PI + tf.math.log(std)


def quantile(x: tf.Tensor, q: float) -> tf.Tensor:
    """Linear-interpolation quantile of a 1-d tensor (torch.quantile's default)."""
    xs = tf.sort(x)
    pos = q * tf.cast(tf.size(x) - 1, x.dtype)
    lo = tf.cast(tf.floor(pos), tf.int32)
    hi = tf.minimum(lo + 1, tf.size(x) - 1)
    frac = pos - tf.floor(pos)
    return tf.gather(xs, lo) + frac * (tf.gather(xs, hi) - tf.gather(xs, lo))


def normalize_advantages(adv: tf.Tensor) -> tf.Tensor:
    """(adv - mean) / (unbiased std + 1e-8).  (B,)"""
    n = tf.cast(tf.size(adv), adv.dtype)
    centered = adv - tf.reduce_mean(adv)
    std = tf.sqrt(tf.reduce_sum(tf.square(centered)) / (n - 1.0))
    return centered / (std + 1e-8)


def clip_advantages(adv: tf.Tensor, lower_q: float = 0.0, upper_q: float = 1.0) -> tf.Tensor:
    """Clip to the batch's [lower_q, upper_q] quantiles; DPPO does it whether or not it normalised.  (B,)"""
    return tf.clip_by_value(adv, quantile(adv, lower_q), quantile(adv, upper_q))


def clipped_policy_loss(newlogprobs: tf.Tensor, oldlogprobs: tf.Tensor, advantages: tf.Tensor,
                        clip_coef: tf.Tensor | float) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """PPO-clip on (N,) log-probs; returns (pg_loss, approx_kl, clipfrac); kl and clipfrac carry no gradient."""
    logratio = (tf.clip_by_value(newlogprobs, LOGPROB_MIN, LOGPROB_MAX)
                - tf.clip_by_value(oldlogprobs, LOGPROB_MIN, LOGPROB_MAX))
    ratio = tf.exp(logratio)
    approx_kl = tf.stop_gradient(tf.reduce_mean((ratio - 1) - logratio))
    clipfrac = tf.stop_gradient(tf.reduce_mean(tf.cast(tf.abs(ratio - 1.0) > clip_coef, ratio.dtype)))
    pg1 = -advantages * ratio
    pg2 = -advantages * tf.clip_by_value(ratio, 1 - clip_coef, 1 + clip_coef)
    return tf.reduce_mean(tf.maximum(pg1, pg2)), approx_kl, clipfrac


def value_loss(newvalues: tf.Tensor, returns: tf.Tensor, oldvalues: tf.Tensor,
               clip_vloss_coef: float | None) -> tf.Tensor:
    """0.5 * mean squared error, optionally with PPO's value clipping.  (N,) inputs."""
    if clip_vloss_coef is None:
        return 0.5 * tf.reduce_mean(tf.square(newvalues - returns))
    clipped = oldvalues + tf.clip_by_value(newvalues - oldvalues, -clip_vloss_coef, clip_vloss_coef)
    return 0.5 * tf.reduce_mean(tf.maximum(tf.square(newvalues - returns), tf.square(clipped - returns)))
