"""Reward-guided conditional diffusion (the "Diffusion Policy Engine" note), TF side (twin of
core_torch/algorithms/reward_guided.py): the denoising loss minus lambda times the reward of the
reconstructed parameters, and DDPM sampling with MPPI re-weighting; the train step and the whole sampling
chain are each one tf.function.

Shapes: B rows, Dx context dim, Dp parameter dim, T denoising steps, K MPPI candidates. Every random number
comes from the driver, drawn in numpy. `reward(x, p) -> (B,)` is a function of tensors; a black-box numpy
reward goes through `host_reward` and reaches sampling only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from core_tf.networks.cond_denoiser import CondDenoiser
from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.optim import AdamW, clip_grad_norm
from core_tf.runtime.precision import constant, float_dtype
from shared.guided.chain import GuidedChain
from shared.param_spec import CondDenoiserConfig
from shared.settings.guided import GuidedSampleConfig, GuidedTrainConfig

Reward = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def host_reward(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Reward:
    """A numpy reward (x (B, Dx), p (B, Dp)) -> (B,) called on the host: no gradient flows through it."""

    def call(x: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
        dtype = p.dtype.as_numpy_dtype
        out = tf.numpy_function(lambda a, b: np.asarray(fn(a, b), dtype), [x, p], p.dtype, stateful=False)
        return tf.reshape(out, [tf.shape(p)[0]])

    return call


def mppi_mean(x: tf.Tensor, mean: tf.Tensor, jitter: tf.Tensor, reward: Reward, temperature: float) -> tf.Tensor:
    """The mean (B, Dp) and K jittered copies mean + jitter (K, B, Dp), averaged with weights
    softmax(reward / temperature) over the K + 1 candidates."""
    cands = tf.concat([mean[None], mean[None] + jitter], axis=0)  # (K+1, B, Dp)
    k1, b = tf.shape(cands)[0], tf.shape(cands)[1]
    scores = tf.reshape(reward(tf.tile(x, [k1, 1]), tf.reshape(cands, [k1 * b, -1])), [k1, b])
    weights = tf.nn.softmax(scores / temperature, axis=0)[..., None]
    return tf.reduce_sum(weights * cands, axis=0)


class RewardGuidedAgent:
    """Train steps and sampling on numpy arrays; canonical weights and AdamW state in and out."""

    def __init__(self, model_cfg: CondDenoiserConfig, chain: GuidedChain, train: GuidedTrainConfig,
                 sample: GuidedSampleConfig, params: OrderedDict, reward: Reward, differentiable: bool = True
                 ) -> None:
        self.train_cfg, self.sample_cfg, self.reward, self.differentiable = train, sample, reward, differentiable
        self.model = CondDenoiser(model_cfg)
        load_state(self.model, params)
        self.named = list(self.model.named_parameters())
        self.variables = [v for _, v in self.named]
        self.optimizer = AdamW(self.named, train.weight_decay)
        tb = chain.tables
        self.sqrt_ab, self.sqrt_1m_ab = constant(tb.sqrt_alphas_cumprod), constant(tb.sqrt_one_minus_alphas_cumprod)
        self.recon_x, self.recon_eps = constant(tb.sqrt_recip_alphas_cumprod), constant(tb.sqrt_recipm1_alphas_cumprod)
        self.time_input = constant(chain.time_input)
        plan = chain.plan
        # the step coefficients as the torch twin uses them (plan.step_scalars: the float32 values)
        self.steps = {k: constant([step[k] for step in plan.step_scalars]) for k in plan.step_scalars[0]}
        self.timesteps = tf.constant(plan.timesteps)
        f, dx, dp = float_dtype(), model_cfg.context_dim, model_cfg.param_dim
        rows = [tf.TensorSpec([None, dx], f), tf.TensorSpec([None, dp], f)]
        self._train = tf.function(self._train_step, jit_compile=differentiable, input_signature=[
            *rows, tf.TensorSpec([None], tf.int64), tf.TensorSpec([None, dp], f), tf.TensorSpec([], f)])
        self._sample = tf.function(self._sample_chain, input_signature=[
            *rows, tf.TensorSpec([None, None, dp], f), tf.TensorSpec([None, None, None, dp], f)])
        self._sample_plain = tf.function(lambda x, p, noise: self._sample_chain(x, p, noise, None),
                                         input_signature=[*rows, tf.TensorSpec([None, None, dp], f)])

    def denoise(self, x: tf.Tensor, p0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor
                ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """p_t = sqrt(ab_t) p0 + sqrt(1 - ab_t) noise, eps_hat(x, p_t, t / T) and the reconstruction
        p0_hat = (p_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t), each (B, Dp)."""
        col = lambda table: tf.gather(table, t)[:, None]  # noqa: E731
        p_t = col(self.sqrt_ab) * p0 + col(self.sqrt_1m_ab) * noise
        eps_hat = self.model(x, p_t, col(self.time_input))
        return p_t, eps_hat, col(self.recon_x) * p_t - col(self.recon_eps) * eps_hat

    def losses(self, x: tf.Tensor, p0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor,
               reward_weight: tf.Tensor) -> dict[str, tf.Tensor]:
        """x (B, Dx), p0 (B, Dp), t (B,) int, noise (B, Dp): loss = mse(eps_hat, noise) - lambda mean R(x, p0_hat)."""
        _, eps_hat, p0_hat = self.denoise(x, p0, t, noise)
        denoise = tf.reduce_mean(tf.square(eps_hat - noise))
        if not self.differentiable:  # a black box gives values only: no reward term
            return {"loss": denoise, "denoise_loss": denoise, "reward": tf.zeros((), denoise.dtype)}
        scored = p0_hat if self.train_cfg.reward_gradient else tf.stop_gradient(p0_hat)
        reward = tf.reduce_mean(self.reward(x, scored))
        return {"loss": denoise - reward_weight * reward, "denoise_loss": denoise, "reward": reward}

    def _train_step(self, x: tf.Tensor, p0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor,
                    reward_weight: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            out = self.losses(x, p0, t, noise, reward_weight)
        grads = tape.gradient(out["loss"], self.variables)
        grads, grad_norm = clip_grad_norm(grads, self.train_cfg.max_grad_norm)
        self.optimizer.apply(grads, self.variables, tf.constant(self.train_cfg.learning_rate, float_dtype()))
        return {**out, "grad_norm": grad_norm}

    def train_step(self, x: np.ndarray, p0: np.ndarray, t: np.ndarray, noise: np.ndarray,
                   reward_weight: float) -> dict[str, float]:
        """One AdamW step (gradient norm clipped) on a batch; the losses before the step and the gradient norm."""
        out = self._train(constant(x), constant(p0), tf.constant(t, tf.int64), constant(noise), constant(reward_weight))
        return {k: float(v) for k, v in out.items()}

    def _sample_chain(self, x: tf.Tensor, p: tf.Tensor, step_noise: tf.Tensor, jitter: tf.Tensor | None
                      ) -> tf.Tensor:
        ones = tf.ones([tf.shape(x)[0], 1], x.dtype)
        for i in tf.range(tf.shape(self.timesteps)[0]):
            s = {k: v[i] for k, v in self.steps.items()}
            eps_hat = self.model(x, p, tf.gather(self.time_input, self.timesteps[i]) * ones)
            mean = s["mean_x0"] * (s["recon_x"] * p - s["recon_eps"] * eps_hat) + s["mean_xt"] * p
            if jitter is not None:
                mean = mppi_mean(x, mean, self.sample_cfg.mppi_jitter * jitter[i], self.reward,
                                 self.sample_cfg.mppi_temperature)
            p = mean + s["std"] * step_noise[i]
        return p

    def sample(self, x: np.ndarray, p_init: np.ndarray, step_noise: np.ndarray, jitter: np.ndarray | None
               ) -> np.ndarray:
        """x (B, Dx), p_init (B, Dp) ~ N(0, I), step_noise (T, B, Dp), jitter (T, K, B, Dp) standard normal
        or None (no MPPI) -> p (B, Dp)."""
        if jitter is None:
            return self._sample_plain(constant(x), constant(p_init), constant(step_noise)).numpy()
        return self._sample(constant(x), constant(p_init), constant(step_noise), constant(jitter)).numpy()

    def reward_of(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.reward(constant(x), constant(p)).numpy()

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "optimizer": self.optimizer.state()}

    def load_groups(self, groups: dict[str, OrderedDict]) -> None:
        load_state(self.model, groups["model"])
        self.optimizer.load_state(groups["optimizer"])
