"""A diffusion policy as a TF Serving SavedModel: raw observations in, environment actions out.

Normalization is baked into the graph, sampling is one compiled graph, and the batch
dimension is dynamic. Signatures:
  serving_default: state [B, To, Do] -> action [B, act_steps, Da]; deterministic sampling as in
      evaluation, with the chain's noise drawn by a stateless generator (fixed seed), so a state
      always gets the same action, whatever else is in the batch.
  sample: state [B, To, Do], noise [B, S+1, Ta, Da] -> action_chunk [B, Ta, Da]; stochastic
      sampling (fine-tuning exploration noise) with the caller's noise, so results reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from shared.dataset import Normalization

NOISE_SEED = (20240, 7)  # the stateless seed of serving_default's chain noise
NOISE_ALG = "philox"  # explicit: "auto_select" draws different numbers under XLA than eagerly


@dataclass(frozen=True)
class PolicyShape:
    cond_steps: int
    obs_dim: int
    horizon_steps: int
    action_dim: int
    act_steps: int
    num_steps: int  # S reverse steps


def default_noise(batch: int, shape: PolicyShape) -> np.ndarray:
    """The noise serving_default uses for a batch: (S+1, B, Ta, Da), row b independent of B."""
    noise = tf.random.stateless_normal([batch, shape.num_steps + 1, shape.horizon_steps, shape.action_dim],
                                       seed=NOISE_SEED, alg=NOISE_ALG)
    return np.transpose(noise.numpy(), (1, 0, 2, 3))


class ServingPolicy(tf.Module):
    def __init__(self, sampler: Callable[[tf.Tensor, tf.Tensor, bool], tf.Tensor], norm: Normalization,
                 shape: PolicyShape, owner: tf.Module, xla: bool = True) -> None:
        """sampler(normalized state (B, To, Do), noise (S+1, B, Ta, Da), deterministic) -> x (B, Ta, Da)."""
        super().__init__()
        self.policy = owner  # tracks the variables
        self.shape = shape
        f32 = np.float32
        self.obs_min, self.obs_max = tf.constant(norm.obs_min.astype(f32)), tf.constant(norm.obs_max.astype(f32))
        self.act_min = tf.constant(norm.action_min.astype(f32))
        self.act_max = tf.constant(norm.action_max.astype(f32))
        s = shape
        state_spec = tf.TensorSpec([None, s.cond_steps, s.obs_dim], tf.float32, name="state")
        noise_spec = tf.TensorSpec([None, s.num_steps + 1, s.horizon_steps, s.action_dim], tf.float32, name="noise")
        # The chain runs under XLA (about 2.5x faster on CPU; xla=False for serving binaries built without it).
        # The signatures themselves stay plain graphs: XLA drops assertions, and they check the inputs.
        self.deterministic_chain = tf.function(lambda s, n: sampler(s, n, True), jit_compile=xla)
        self.stochastic_chain = tf.function(lambda s, n: sampler(s, n, False), jit_compile=xla)
        self.serve = tf.function(self._serve, input_signature=[state_spec])
        self.sample = tf.function(self._sample, input_signature=[state_spec, noise_spec])

    def _check_shape(self, name: str, value: tf.Tensor, trailing: list[int]) -> tf.Tensor:
        """Loaded signatures do not enforce their specs' shapes: assert them in the graph."""
        expected = f"{name} must be float32 [batch, {', '.join(map(str, trailing))}]"
        tf.debugging.assert_rank(value, len(trailing) + 1, message=expected)
        tf.debugging.assert_equal(tf.shape(value)[1:], tf.constant(trailing), message=expected)
        return value

    def _normalized(self, state: tf.Tensor) -> tf.Tensor:
        s = self.shape
        state = self._check_shape("state", state, [s.cond_steps, s.obs_dim])
        state = tf.debugging.check_numerics(state, "state contains NaN or Inf")
        return 2.0 * ((state - self.obs_min) / (self.obs_max - self.obs_min + 1e-6) - 0.5)

    def _env_units(self, x: tf.Tensor) -> tf.Tensor:
        return (x + 1.0) / 2.0 * (self.act_max - self.act_min) + self.act_min

    def _serve(self, state: tf.Tensor) -> dict[str, tf.Tensor]:
        s = self.shape
        batch = tf.shape(state)[0]
        noise = tf.random.stateless_normal([batch, s.num_steps + 1, s.horizon_steps, s.action_dim], seed=NOISE_SEED,
                                           alg=NOISE_ALG)
        x = self.deterministic_chain(self._normalized(state), tf.transpose(noise, [1, 0, 2, 3]))
        return {"action": self._env_units(x)[:, : s.act_steps]}

    def _sample(self, state: tf.Tensor, noise: tf.Tensor) -> dict[str, tf.Tensor]:
        s = self.shape
        noise = self._check_shape("noise", noise, [s.num_steps + 1, s.horizon_steps, s.action_dim])
        tf.debugging.assert_equal(tf.shape(noise)[0], tf.shape(state)[0], message="noise and state batch differ")
        x = self.stochastic_chain(self._normalized(state), tf.transpose(noise, [1, 0, 2, 3]))
        return {"action_chunk": self._env_units(x)}

    def save(self, path: str) -> None:
        tf.saved_model.save(self, path, signatures={"serving_default": self.serve, "sample": self.sample})
