"""Exact-likelihood DPPO (upstream PPOExactDiffusion), TF side; twin of core_torch/algorithms/ppo_exact_diffusion.py.

Shapes: B chunks, E Hutchinson probes per chunk, Ta horizon, Da action dim, To history, Do obs dim,
D = Ta * Da. The per-step coefficients and the probes come from shared/diffusion/exact_likelihood.py.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.ppo_agent import PPOAgent
from core_tf.algorithms.ppo_diffusion import PPODiffusionModel
from core_tf.algorithms.ppo_loss import clipped_policy_loss, normalize_advantages, value_loss
from core_tf.networks.diffusion_mlp import DiffusionMLP
from core_tf.runtime.canonical import load_state
from core_tf.runtime.precision import constant, float_dtype
from shared.diffusion.exact_likelihood import ProbeSource, bits_per_dim_scale, prior_log_norm
from shared.param_spec import CriticObsConfig
from shared.precision import as_compute
from shared.settings import DiffusionConfig, DPPOSettings, ExactLikelihoodSettings, PPOSettings


class PPOExactDiffusionModel(PPODiffusionModel):
    """PPODiffusionModel (actor, actor_ft, critic, sampler) plus `exact_logprobs`."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, d: DPPOSettings,
                 exact: ExactLikelihoodSettings, **kwargs) -> None:
        super().__init__(dc, critic, d, **kwargs)
        self.exact = exact
        plan = exact.plan()
        self.ode_steps = plan.num_steps
        self.ode_use_ft = [bool(u) for u in plan.use_ft]
        self.ode_t = plan.timesteps  # (M,) int64
        self.ode_dt, self.ode_x_coef, self.ode_out_coef = (as_compute(a) for a in (plan.dts, plan.x_coef,
                                                                                    plan.out_coef))

    def _drift(self, net: DiffusionMLP, x: tf.Tensor, t_emb: tf.Tensor, cond: tf.Tensor, m: int) -> tf.Tensor:
        """f(x) = x_coef x + out_coef net(x) at Euler step m.  x (N, Ta, Da) -> (N, Ta, Da)"""
        return self.ode_x_coef[m] * x + self.ode_out_coef[m] * net.denoise(x, t_emb, cond)

    def _divergence(self, x: tf.Tensor, t_emb: tf.Tensor, cond_rep: tf.Tensor, probes: tf.Tensor,
                    m: int) -> tf.Tensor:
        """Hutchinson estimate of div f for the base actor's drift, averaged over the E probes of each chunk.

        x (B, Ta, Da), cond_rep (B*E, C), probes (B*E, Ta, Da) -> (B,): mean_e v_e . (df/dx)^T v_e.
        An enclosing GradientTape records the inner gradient, so the update backpropagates through it."""
        B = tf.shape(x)[0]
        E = self.exact.num_epsilon
        xr = tf.repeat(x, E, axis=0)  # (B*E, Ta, Da), row b*E + e
        with tf.GradientTape() as tape:
            tape.watch(xr)
            f = self._drift(self.actor, xr, t_emb, cond_rep, m)
            total = tf.reduce_sum(f * probes)
        grad = tape.gradient(total, xr)
        return tf.reduce_mean(tf.reshape(tf.reduce_sum(grad * probes, axis=[1, 2]), [B, E]), axis=1)

    def exact_logprobs(self, state: tf.Tensor, actions: tf.Tensor, probes: tf.Tensor) -> tf.Tensor:
        """log p(actions | state) in bits per dimension, by Euler steps of the ODE from t = eps to 1.

        state (B, To, Do), actions (B, Ta, Da), probes (B*E, Ta, Da) -> (B,)."""
        E = self.exact.num_epsilon
        D = self.dc.horizon_steps * self.dc.action_dim
        steps = tf.constant(self.ode_t)
        t_base, t_ft = self.actor.time_embedding(steps), self.actor_ft.time_embedding(steps)  # (M, time_dim)
        cond_base, cond_ft = self.actor.condition(state), self.actor_ft.condition(state)  # (B, C)
        cond_rep = tf.repeat(cond_base, E, axis=0)  # (B*E, C)
        x, delta = actions, tf.zeros([tf.shape(actions)[0]], actions.dtype)
        for m in range(self.ode_steps):
            ft = self.ode_use_ft[m]
            net, t_emb, cond = (self.actor_ft, t_ft, cond_ft) if ft else (self.actor, t_base, cond_base)
            f = self._drift(net, x, t_emb[m : m + 1], cond, m)
            div = self._divergence(x, t_base[m : m + 1], cond_rep, probes, m)
            x, delta = x + self.ode_dt[m] * f, delta + self.ode_dt[m] * div
        prior = prior_log_norm(D) - tf.reduce_sum(tf.square(x), axis=[1, 2]) / 2.0  # log N(z; 0, I), z = x(1)
        return (prior + delta) * bits_per_dim_scale(D)


class PPOExactDiffusionAgent(PPOAgent):
    """act / evaluate / update on numpy arrays for exact-likelihood DPPO.

    The likelihood unrolls every Euler step with a nested gradient: XLA took 13 s to compile the scoring
    graph and 33 s the update's (hopper's 20 steps, small networks, this project's 2-core CPU), and a plain
    graph 7 s and 16 s, against ~0.1 s per call run eagerly; scoring and update run eagerly."""

    compile_update = False

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: PPOSettings, d: DPPOSettings,
                 exact: ExactLikelihoodSettings, init_params: OrderedDict) -> None:
        model = PPOExactDiffusionModel(dc, critic, d, exact)
        load_state(model, init_params)
        model.check_fixed_eta()
        trainable = {n for n, _ in model.named_parameters() if n.startswith(("actor_ft.", "critic."))}
        super().__init__(model, "actor_ft.", settings, trainable)
        self.probes = ProbeSource(exact.num_epsilon, dc.horizon_steps, dc.action_dim, exact.hutchinson_type)
        obs_spec = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], float_dtype())
        noise_spec = tf.TensorSpec([self.model.num_steps + 1, None, dc.horizon_steps, dc.action_dim], float_dtype())
        self._act = {det: tf.function(lambda o, n, det=det: self.model.sample(o, n, det)[0], jit_compile=True,
                                      input_signature=[obs_spec, noise_spec]) for det in (True, False)}

    def seed_rng(self, seed: int) -> None:
        super().seed_rng(seed)
        self.probes.reseed(seed)

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """DPPO's sampler; only the final chunk is kept (the likelihood needs no chain)."""
        return {"actions": self._act[deterministic](tf.constant(obs), tf.constant(noise)).numpy()}

    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), exact log-likelihoods (N,)) of the rollout's chunks, with fresh probes."""
        o = tf.constant(obs)
        probes = tf.constant(as_compute(self.probes.draw(ProbeSource.SCORE, len(obs))))
        return (tf.reshape(self.model.critic(o), [-1]).numpy(),
                self.model.exact_logprobs(o, tf.constant(sample["actions"]), probes).numpy())

    def value(self, obs: np.ndarray) -> np.ndarray:
        return tf.reshape(self.model.critic(tf.constant(obs)), [-1]).numpy()

    def update(self, batch: dict[str, np.ndarray], update_actor: bool,
               minibatch: int | None = None) -> dict[str, float]:
        """PPOAgent.update with this minibatch's probes added to the batch."""
        probes = as_compute(self.probes.draw(ProbeSource.UPDATE, len(batch["obs"])))
        return super().update({**batch, "probes": probes}, update_actor, minibatch)

    def loss_terms(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Upstream PPOExactDiffusion.loss: one clipped ratio per chunk, advantages normalised, no entropy."""
        s = self.settings
        newlogprobs = self.model.exact_logprobs(b["obs"], b["actions"], b["probes"])
        adv = normalize_advantages(b["advantages"]) if s.norm_adv else b["advantages"]
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv,
                                                           constant(s.clip_ploss_coef))
        v_loss = value_loss(tf.reshape(self.model.critic(b["obs"]), [-1]), b["returns"], b["values"],
                            s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "v_loss": v_loss, "approx_kl": approx_kl, "clipfrac": clipfrac}
