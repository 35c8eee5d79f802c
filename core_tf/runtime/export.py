"""A policy as a TF Serving SavedModel: raw observations in, environment actions out.

Normalization is baked into the graph, sampling is one compiled graph, and the batch dimension is dynamic.
Every policy kind (shared/serving.py: a diffusion, Gaussian or GMM policy) has the same two signatures; both
take the observation first (shape.observation_inputs): the raw state [B, To, Do], and for an image policy the
camera frames rgb uint8 [B, img_cond_steps, 3 num_img, H, W] (scaled inside the network, as in training):
  serving_default: observation -> action [B, act_steps, Da]; deterministic, as in evaluation. A
      diffusion chain's noise is drawn by a stateless generator (fixed seed), so a state always gets the same
      action, whatever else is in the batch; a Gaussian policy returns its mean, a GMM its likeliest mode's mean.
  sample: observation and the kind's noise (shape.sample_inputs: a diffusion chain's noise [B, S+1, Ta, Da]; a
      Gaussian's noise [B, Ta, Da]; a GMM's noise [B, Ta, Da] and mode_uniform [B]) -> action_chunk
      [B, Ta, Da]; stochastic sampling (fine-tuning exploration) with the caller's noise, so results reproduce.
Both check their inputs' shapes, row counts and a float input's finiteness (and a uniform input's range) in the
graph; a uint8 input's dtype is its range. Under XLA the sampler sees only bucket batch sizes (powers of two up
to MAX_BUCKET, larger batches in chunks of it), each compiled once; the SavedModel carries TF Serving warm-up
requests for every bucket, so the compiles happen at load.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from core_tf.runtime.serving_warmup import write_warmup_requests
from shared.data.dataset import Normalization
from shared.serving import PolicyShape, ServedInput

NOISE_SEED = (20240, 7)  # the stateless seed of serving_default's chain noise
NOISE_ALG = "philox"  # explicit: "auto_select" draws different numbers under XLA than eagerly
MAX_BUCKET = 1024  # under XLA a batch runs padded to the next power of two; larger ones in chunks of this

# sampler(observation as the twins take it: the normalized state (B, To, Do), or the pair (normalized state,
# rgb (B, T, C, H, W) uint8); inputs (batch-first tensors in shape.sample_inputs' order; for the deterministic
# signature a diffusion chain's default noise, else none), deterministic) -> x (B, Ta, Da)
Sampler = Callable[[tf.Tensor | tuple[tf.Tensor, ...], tuple[tf.Tensor, ...], bool], tf.Tensor]


def default_noise(batch: int, shape: PolicyShape) -> np.ndarray:
    """The noise serving_default uses for a batch of a diffusion policy: (S+1, B, Ta, Da), row b independent
    of B."""
    noise = tf.random.stateless_normal([batch, shape.num_steps + 1, shape.horizon_steps, shape.action_dim],
                                       seed=NOISE_SEED, alg=NOISE_ALG)
    return np.transpose(noise.numpy(), (1, 0, 2, 3))


def bucket_sizes(max_bucket: int = MAX_BUCKET) -> list[int]:
    """The batch shapes the XLA chain is compiled for: powers of two up to max_bucket."""
    return [1 << i for i in range(max_bucket.bit_length())]


def _spec(served: ServedInput) -> tf.TensorSpec:
    return tf.TensorSpec([None, *served.trailing], tf.as_dtype(served.dtype), name=served.name)


def _observation(parts: tuple[tf.Tensor, ...]) -> tf.Tensor | tuple[tf.Tensor, ...]:
    """The observation's tensors in the form the twins take: the state alone, or (state, rgb)."""
    return parts[0] if len(parts) == 1 else tuple(parts)


class ServingPolicy(tf.Module):
    def __init__(self, sampler: Sampler, norm: Normalization, shape: PolicyShape, owner: tf.Module,
                 xla: bool = True, max_bucket: int = MAX_BUCKET) -> None:
        super().__init__()
        if max_bucket < 1 or max_bucket & (max_bucket - 1):
            raise ValueError(f"max_bucket must be a power of two, got {max_bucket}")
        self.policy = owner  # tracks the variables
        self.shape = shape
        self.xla = xla
        self.max_bucket = max_bucket
        f32 = np.float32
        self.obs_min, self.obs_max = tf.constant(norm.obs_min.astype(f32)), tf.constant(norm.obs_max.astype(f32))
        self.act_min = tf.constant(norm.action_min.astype(f32))
        self.act_max = tf.constant(norm.action_max.astype(f32))
        self.observations = shape.observation_inputs
        self.inputs = shape.sample_inputs
        n = len(self.observations)
        # The sampler runs under XLA (about 2.5x faster on CPU; xla=False for serving binaries built without it).
        # The signatures themselves stay plain graphs: XLA drops assertions, and they check the inputs.
        # A chain takes the observation's tensors, then the noise: (state, [rgb], *noise).
        self.deterministic_chain = tf.function(lambda *v: sampler(_observation(v[:n]), v[n:], True), jit_compile=xla)
        self.stochastic_chain = tf.function(lambda *v: sampler(_observation(v[:n]), v[n:], False), jit_compile=xla)
        self.serve = tf.function(self._serve, input_signature=list(map(_spec, self.observations)))
        self.sample = tf.function(self._sample, input_signature=[*map(_spec, self.observations),
                                                                 *map(_spec, self.inputs)])

    def _check_input(self, served: ServedInput, value: tf.Tensor) -> tf.Tensor:
        """Loaded signatures enforce neither their specs' shapes nor finiteness: assert both in the graph,
        ahead of every op that reads the value. The rank is part of the shape comparison (the spec's
        static rank would fold a rank assertion away): shape[1:] padded with -1 must read trailing, -1."""
        name, expected, trailing = served.name, served.describe(), served.trailing
        n = len(trailing)
        padded = tf.concat([tf.shape(value)[1:], tf.fill([n + 1], -1)], 0)[: n + 1]
        shape_ok = tf.debugging.Assert(tf.reduce_all(tf.equal(padded, tf.constant(trailing + [-1]))),
                                       [f"{name} must be {expected}; got shape", tf.shape(value)], summarize=8)
        with tf.control_dependencies([shape_ok]):
            value = tf.identity(value)
        if served.checks_finite:  # uint8 frames: every value is a pixel value
            value = tf.debugging.check_numerics(value, f"{name} contains NaN or Inf; it must be finite {expected}")
        if served.unit_interval:
            in_range = tf.debugging.Assert(tf.reduce_all((value >= 0.0) & (value <= 1.0)), [
                f"{name} must lie in [0, 1] (a uniform draw); got min, max", tf.reduce_min(value),
                tf.reduce_max(value)])
            with tf.control_dependencies([in_range]):
                value = tf.identity(value)
        return value

    @staticmethod
    def _same_rows(served: ServedInput, value: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """value, once asserted to have `batch` rows (the state's)."""
        same_batch = tf.debugging.Assert(tf.equal(tf.shape(value)[0], batch), [
            f"{served.name} must have one row per state row; got {served.name} rows, state rows",
            tf.shape(value)[0], batch])
        with tf.control_dependencies([same_batch]):
            return tf.identity(value)

    def _checked_observation(self, parts: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
        """The raw observation's tensors, checked -> (normalized state, [rgb as sent])."""
        state = self._check_input(self.observations[0], parts[0])
        rest = tuple(self._same_rows(served, self._check_input(served, value), tf.shape(state)[0])
                     for served, value in zip(self.observations[1:], parts[1:], strict=True))
        return (self._normalized(state), *rest)

    def _normalized(self, state: tf.Tensor) -> tf.Tensor:
        return 2.0 * ((state - self.obs_min) / (self.obs_max - self.obs_min + 1e-6) - 0.5)

    def _env_units(self, x: tf.Tensor) -> tf.Tensor:
        return (x + 1.0) / 2.0 * (self.act_max - self.act_min) + self.act_min

    def _bucket(self, batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(rows per sampler call, number of calls): the smallest bucket holding the batch, or chunks of the
        largest one."""
        sizes = tf.constant(bucket_sizes(self.max_bucket))
        rows = tf.reduce_min(tf.where(sizes >= batch, sizes, self.max_bucket))
        return rows, (batch + rows - 1) // rows

    def _run_chain(self, chain: Callable, obs: tuple[tf.Tensor, ...], inputs: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """obs (the normalized state (P, To, Do), [rgb (P, T, C, H, W)]) and the inputs (P, ...), P rows already
        padded to rows * calls under XLA -> x (P, Ta, Da). Rows never mix, so padding rows cannot change real ones."""
        values = (*obs, *inputs)
        if not self.xla:  # a plain graph has no per-shape compile: run the batch as it is
            return chain(*values)
        s = self.shape
        rows, calls = self._bucket(tf.shape(obs[0])[0])

        def in_chunks() -> tf.Tensor:  # beyond the largest bucket: calls of max_bucket rows each, in turn
            chunks = tuple(tf.reshape(v, tf.concat([[calls, rows], tf.shape(v)[1:]], 0)) for v in values)
            x = tf.map_fn(lambda c: chain(*c), chunks,
                          fn_output_signature=tf.TensorSpec([None, s.horizon_steps, s.action_dim], tf.float32),
                          parallel_iterations=1)
            return tf.reshape(x, [calls * rows, s.horizon_steps, s.action_dim])

        return tf.cond(calls > 1, in_chunks, lambda: chain(*values))

    def _padded_rows(self, batch: tf.Tensor) -> tf.Tensor:
        if not self.xla:
            return batch
        rows, calls = self._bucket(batch)
        return rows * calls

    @staticmethod
    def _pad(value: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
        """value (B, ...) with zero rows appended up to `rows`."""
        return tf.pad(value, [[0, rows - tf.shape(value)[0]]] + [[0, 0]] * (len(value.shape) - 1))

    def _serve(self, *observation: tf.Tensor) -> dict[str, tf.Tensor]:
        """observation: state [, rgb] as sent."""
        s = self.shape
        obs = self._checked_observation(observation)
        batch = tf.shape(obs[0])[0]
        padded = self._padded_rows(batch)
        inputs = ()
        if s.draws_default_noise:  # stateless draws fill row after row: the first `batch` rows don't depend on `padded`
            inputs = tuple(tf.random.stateless_normal(tf.concat([[padded], i.trailing], 0), seed=NOISE_SEED,
                                                      alg=NOISE_ALG) for i in self.inputs)
        obs = tuple(self._pad(v, padded) for v in obs)  # frames padded with black rows, the state with zeros
        x = self._run_chain(self.deterministic_chain, obs, inputs)[:batch]
        return {"action": self._env_units(x)[:, : s.act_steps]}

    def _sample(self, *values: tf.Tensor) -> dict[str, tf.Tensor]:
        """values: state [, rgb], then the kind's noise inputs, as sent."""
        n = len(self.observations)
        obs = self._checked_observation(values[:n])
        batch = tf.shape(obs[0])[0]
        padded = self._padded_rows(batch)
        checked = tuple(self._pad(self._same_rows(served, self._check_input(served, value), batch), padded)
                        for served, value in zip(self.inputs, values[n:], strict=True))
        obs = tuple(self._pad(v, padded) for v in obs)
        x = self._run_chain(self.stochastic_chain, obs, checked)[:batch]
        return {"action_chunk": self._env_units(x)}

    def warmup_requests(self) -> list[tuple[str, dict[str, np.ndarray]]]:
        """One request per signature and compiled batch shape (one batch size without XLA): replayed by
        TF Serving at load time, so no client request pays for a compile."""
        requests = []
        for batch in bucket_sizes(self.max_bucket) if self.xla else [1]:
            obs = {i.name: np.zeros((batch, *i.trailing), i.dtype) for i in self.observations}  # black frames
            noise = {i.name: np.zeros((batch, *i.trailing), i.dtype) for i in self.inputs}
            requests += [("serving_default", obs), ("sample", {**obs, **noise})]
        return requests

    def save(self, path: str) -> None:
        tf.saved_model.save(self, path, signatures={"serving_default": self.serve, "sample": self.sample})
        write_warmup_requests(path, self.warmup_requests())
