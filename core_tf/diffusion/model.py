"""DiffusionModel: forward noising, denoising loss and the reverse-chain sampler.

Twin of core_torch/diffusion/model.py. The sampler is one compiled tf.function per
sampling plan (dynamic batch), so no Python runs per denoising step.
Shapes: B batch, S reverse steps, Ta horizon, Da action dim, To history, Do obs dim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from core_tf.networks.inputs import Cond, cond_inputs, obs_signature, state_input, to_tensors
from core_tf.networks.registry import build_network
from core_tf.runtime.module import Module
from core_tf.runtime.precision import constant, float_dtype
from shared.diffusion.sampling_plan import DDPM_EVAL_MIN_STD, SamplingPlan, sampling_plan
from shared.diffusion.schedule import ddpm_tables
from shared.settings import DiffusionConfig


def reverse_mean(x: tf.Tensor, net_out: tf.Tensor, coefs: dict[str, tf.Tensor | float], predict_epsilon: bool,
                 denoised_clip_value: float | None) -> tf.Tensor:
    """Mean of p(x_prev | x): x0 = clip(recon_x x - recon_eps eps) (or the x0 output); mean_x0 x0 + mean_xt x."""
    x0 = coefs["recon_x"] * x - coefs["recon_eps"] * net_out if predict_epsilon else net_out
    if denoised_clip_value is not None:
        x0 = tf.clip_by_value(x0, -denoised_clip_value, denoised_clip_value)
    return coefs["mean_x0"] * x0 + coefs["mean_xt"] * x


def chain_transitions(chains: tf.Tensor, step_tables: dict[str, tf.Tensor]
                      ) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
    """Every transition chain[:, j] -> chain[:, j + 1] of chains (B, K+1, *E) as rows b*K + j: prev and next
    (B*K, *E), and each step table (K,) repeated per chain and shaped (B*K, 1, ..., 1) to broadcast over E.
    What scoring a chain's log-probability needs for any event shape E (DPPO's (Ta, Da), an image's pixels)."""
    B, K = tf.shape(chains)[0], tf.shape(chains)[1] - 1
    rank = len(chains.shape) - 2
    flat = tf.concat([[B * K], tf.shape(chains)[2:]], axis=0)
    prev = tf.reshape(chains[:, :-1], flat)
    nxt = tf.reshape(chains[:, 1:], flat)
    pad = (slice(None),) + (None,) * rank
    return prev, nxt, {k: tf.tile(v, [B])[pad] for k, v in step_tables.items()}


class Sample(NamedTuple):
    trajectories: tf.Tensor  # (B, Ta, Da)
    chains: tf.Tensor | None  # (B, S + 1, Ta, Da), x_T first


class DiffusionModel(Module):
    def __init__(self, config: DiffusionConfig, network: Module | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.network = self.add_child(
            "network", network if network is not None else build_network(config.network))
        tables = ddpm_tables(config.denoising_steps)
        self.sqrt_alphas_cumprod = constant(tables.sqrt_alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = constant(tables.sqrt_one_minus_alphas_cumprod)
        self._plans: dict[tuple[bool, float], SamplingPlan] = {}
        self._samplers: dict[tuple[bool, float], Callable] = {}

    # ---------- tables ----------
    def plan(self, deterministic: bool = True, min_sampling_std: float = DDPM_EVAL_MIN_STD) -> SamplingPlan:
        key = (deterministic, float(min_sampling_std))
        if key not in self._plans:
            c = self.config
            self._plans[key] = sampling_plan(
                c.denoising_steps, c.use_ddim, c.ddim_steps, deterministic=deterministic,
                min_sampling_std=min_sampling_std,
            )
        return self._plans[key]

    @property
    def num_sampling_steps(self) -> int:
        return self.config.ddim_steps if self.config.use_ddim else self.config.denoising_steps

    # ---------- training ----------
    def q_sample(self, x0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise (B, Ta, Da), t (B,)."""
        a = tf.gather(self.sqrt_alphas_cumprod, t)[:, None, None]
        s = tf.gather(self.sqrt_one_minus_alphas_cumprod, t)[:, None, None]
        return a * x0 + s * noise

    def loss(self, x0: tf.Tensor, state: Cond, t: tf.Tensor, noise: tf.Tensor,
             training: bool = False) -> tf.Tensor:
        """Mean squared error of the epsilon (or x0) prediction at timesteps t; state (B, To, Do) or an image
        network's (state, rgb). training: apply dropout (torch's module mode; its pre-training sets train())."""
        pred = self.network(self.q_sample(x0, t, noise), t, *cond_inputs(state), training=training)
        target = noise if self.config.predict_epsilon else x0
        return tf.reduce_mean(tf.square(pred - target))

    # ---------- sampling ----------
    def reverse_mean(self, x: tf.Tensor, net_out: tf.Tensor, coefs: dict[str, tf.Tensor | float]) -> tf.Tensor:
        """Mean of p(x_prev | x) from the network output; coefs hold one step's scalars."""
        return reverse_mean(x, net_out, coefs, self.config.predict_epsilon, self.config.denoised_clip_value)

    def draw_noise(self, batch: int, generator: tf.random.Generator | None = None) -> tf.Tensor:
        """Standard normal noise for one chain: (S + 1, B, Ta, Da), x_T first."""
        c = self.config
        shape = (self.num_sampling_steps + 1, batch, c.horizon_steps, c.action_dim)
        gen = generator if generator is not None else tf.random.get_global_generator()
        return gen.normal(shape)

    def _chain(self, state: Cond, noise: tf.Tensor, plan: SamplingPlan) -> tuple[tf.Tensor, tf.Tensor]:
        c = self.config
        t_embs = self.network.time_embedding(tf.constant(plan.timesteps))  # (S, time_dim)
        cond = self.network.condition(*cond_inputs(state))  # (B, C); both once per chain
        z = tf.clip_by_value(noise[1:], -c.randn_clip_value, c.randn_clip_value)  # (S, B, Ta, Da)
        x = noise[0]
        chain = [x]
        for i, coefs in enumerate(plan.step_scalars):
            net_out = self.network.denoise(x, t_embs[i : i + 1], cond)
            x = self.reverse_mean(x, net_out, coefs) + coefs["std"] * z[i]
            if i == plan.num_steps - 1 and c.final_action_clip_value is not None:
                x = tf.clip_by_value(x, -c.final_action_clip_value, c.final_action_clip_value)
            chain.append(x)
        return x, tf.stack(chain, axis=1)

    def compiled_sampler(self, deterministic: bool = True, min_sampling_std: float = DDPM_EVAL_MIN_STD) -> Callable:
        """tf.function (state (B, To, Do), noise (S + 1, B, Ta, Da)) -> (x (B, Ta, Da), chain)."""
        key = (deterministic, float(min_sampling_std))
        if key not in self._samplers:
            c, plan = self.config, self.plan(deterministic, min_sampling_std)
            signature = [
                obs_signature(c.network, c.cond_steps, c.obs_dim),
                tf.TensorSpec([plan.num_steps + 1, None, c.horizon_steps, c.action_dim], float_dtype()),
            ]
            self._samplers[key] = tf.function(lambda s, n: self._chain(s, n, plan), input_signature=signature,
                                              jit_compile=True)
        return self._samplers[key]

    def sample(
        self,
        state: Cond,
        noise: tf.Tensor | None = None,
        deterministic: bool = True,
        min_sampling_std: float = DDPM_EVAL_MIN_STD,
        return_chain: bool = False,
        generator: tf.random.Generator | None = None,
    ) -> Sample:
        """Run the reverse chain for state (B, To, Do) (or (state, rgb)); noise (S + 1, B, Ta, Da) or drawn."""
        state = to_tensors(state)
        if noise is None:
            noise = self.draw_noise(int(state_input(state).shape[0]), generator)
        sampler = self.compiled_sampler(deterministic, min_sampling_std)
        x, chain = sampler(state, tf.convert_to_tensor(noise, float_dtype()))
        return Sample(x, chain if return_chain else None)
