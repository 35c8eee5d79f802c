"""DPPO: a diffusion policy fine-tuned with PPO over the environment x denoising MDP (TF side).

Twin of core_torch/ppo_diffusion.py. Shapes: B env samples, K fine-tuned denoising
steps, S all reverse steps, Ta horizon, Da action dim, To history, Do obs dim.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.canonical import load_state
from core_tf.critic import CriticObs
from core_tf.diffusion import reverse_mean
from core_tf.diffusion_mlp import DiffusionMLP
from core_tf.module import Module
from core_tf.ppo_agent import PPOAgent
from core_tf.ppo_loss import (
    LOGPROB_MAX,
    LOGPROB_MIN,
    clip_advantages,
    clipped_policy_loss,
    normal_logprob,
    normalize_advantages,
    value_loss,
)
from shared.finetune_config import DPPOSettings, PPOSettings
from shared.model_config import DiffusionConfig
from shared.param_spec import CriticObsConfig
from shared.ppo_math import clip_coefficients, denoising_discount
from shared.sampling_plan import SamplingPlan, finetune_tables, sampling_plan

_COEFS = ("recon_x", "recon_eps", "mean_x0", "mean_xt")


def _f32(a: np.ndarray) -> tf.Tensor:
    return tf.constant(np.asarray(a, dtype=np.float32))


class PPODiffusionModel(Module):
    """Frozen base `actor`, fine-tuned copy `actor_ft` (last K steps only), `critic`."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, d: DPPOSettings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dc, self.d = dc, d
        self.actor = self.add_child("actor", DiffusionMLP.from_config(dc.network))
        self.actor_ft = self.add_child("actor_ft", DiffusionMLP.from_config(dc.network))
        self.critic = self.add_child("critic", CriticObs.from_config(critic))
        self.num_steps = dc.ddim_steps if dc.use_ddim else dc.denoising_steps

        def plan(deterministic: bool) -> SamplingPlan:
            return sampling_plan(dc.denoising_steps, dc.use_ddim, dc.ddim_steps, d.ddim_eta, deterministic,
                                 d.min_sampling_denoising_std)

        self.plans = {det: plan(det) for det in (True, False)}
        ft = finetune_tables(self.plans[False], d.ft_denoising_steps, d.min_logprob_denoising_std)
        self.ft_t = tf.constant(ft.timesteps)  # (K,)
        self.ft_coefs = {k: _f32(getattr(ft, k)) for k in _COEFS}  # each (K,)
        self.ft_std = _f32(ft.logprob_std)

    def sample(self, state: tf.Tensor, noise: tf.Tensor, deterministic: bool,
               use_base_policy: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """state (B, To, Do), noise (S+1, B, Ta, Da) -> actions (B, Ta, Da), chain (B, K+1, Ta, Da).

        Steps before the last K run the base actor only; the last K run actor_ft (or the base
        actor when use_base_policy), so no network output is computed and thrown away.
        """
        plan, K, S = self.plans[deterministic], self.d.ft_denoising_steps, self.num_steps
        ft_net = self.actor if use_base_policy else self.actor_ft
        steps = tf.constant(plan.timesteps)  # (S,)
        base_in = (self.actor.time_embedding(steps), self.actor.condition(state))  # once per chain
        ft_in = (ft_net.time_embedding(steps), ft_net.condition(state))
        z = tf.clip_by_value(noise[1:], -self.dc.randn_clip_value, self.dc.randn_clip_value)  # (S, B, Ta, Da)
        x = noise[0]
        chain = [x] if K == S else []
        for i, coefs in enumerate(plan.step_scalars):
            net, (t_embs, cond) = (self.actor, base_in) if i < S - K else (ft_net, ft_in)
            mean = reverse_mean(x, net.denoise(x, t_embs[i : i + 1], cond), coefs, self.dc.predict_epsilon,
                                self.dc.denoised_clip_value)
            x = mean + coefs["std"] * z[i]
            if i == S - 1 and self.dc.final_action_clip_value is not None:
                x = tf.clip_by_value(x, -self.dc.final_action_clip_value, self.dc.final_action_clip_value)
            if i >= S - K - 1:
                chain.append(x)
        return tf.stop_gradient(x), tf.stop_gradient(tf.stack(chain, axis=1))

    def logprobs(self, state: tf.Tensor, chains: tf.Tensor) -> tf.Tensor:
        """Log-density of every fine-tuned transition chain[j] -> chain[j+1] under actor_ft.  (B, K, Ta, Da)"""
        K, Ta, Da = self.d.ft_denoising_steps, self.dc.horizon_steps, self.dc.action_dim
        B = tf.shape(chains)[0]
        prev = tf.reshape(chains[:, :-1], [B * K, Ta, Da])
        nxt = tf.reshape(chains[:, 1:], [B * K, Ta, Da])
        s = tf.repeat(state, K, axis=0)  # (B*K, To, Do), row b*K + j
        t = tf.tile(self.ft_t, [B])
        coefs = {k: tf.tile(v, [B])[:, None, None] for k, v in self.ft_coefs.items()}
        mean = reverse_mean(prev, self.actor_ft(prev, t, s), coefs, self.dc.predict_epsilon,
                            self.dc.denoised_clip_value)
        std = tf.tile(self.ft_std, [B])[:, None, None]
        return tf.reshape(normal_logprob(nxt, mean, std), [B, K, Ta, Da])


class PPODiffusionAgent(PPOAgent):
    """act / evaluate / update on numpy arrays for DPPO."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: PPOSettings, d: DPPOSettings,
                 init_params: OrderedDict) -> None:
        model = PPODiffusionModel(dc, critic, d)
        load_state(model, init_params)
        trainable = {n for n, _ in model.named_parameters() if not n.startswith("actor.")}
        super().__init__(model, "actor_ft.", settings, trainable)
        K = d.ft_denoising_steps
        self.discount = _f32(denoising_discount(K, d.gamma_denoising))  # (K,)
        self.clip_coefs = _f32(clip_coefficients(K, settings.clip_ploss_coef, d.clip_ploss_coef_base,
                                                 d.clip_ploss_coef_rate))  # (K,)
        c = dc
        obs_spec = tf.TensorSpec([None, c.cond_steps, c.obs_dim], tf.float32)
        self._act = {det: tf.function(lambda o, n, det=det: self.model.sample(o, n, det), jit_compile=True,
                                      input_signature=[
            obs_spec, tf.TensorSpec([self.model.num_steps + 1, None, c.horizon_steps, c.action_dim], tf.float32)])
            for det in (True, False)}

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        actions, chains = self._act[deterministic](tf.constant(obs), tf.constant(noise))
        return {"actions": actions.numpy(), "chains": chains.numpy()}

    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N, K, Ta, Da)) of the rollout's chains under the current actor_ft."""
        o = tf.constant(obs)
        return (tf.reshape(self.model.critic(o), [-1]).numpy(),
                self.model.logprobs(o, tf.constant(sample["chains"])).numpy())

    def value(self, obs: np.ndarray) -> np.ndarray:
        return tf.reshape(self.model.critic(tf.constant(obs)), [-1]).numpy()

    def _mean_logprob(self, logprobs: tf.Tensor) -> tf.Tensor:
        """Clamp element-wise, keep the executed actions (reward_horizon), average: (B, K, Ta, Da) -> (B*K,)."""
        h = self.model.d.reward_horizon
        clamped = tf.clip_by_value(logprobs, LOGPROB_MIN, LOGPROB_MAX)[:, :, :h]
        return tf.reshape(tf.reduce_mean(clamped, axis=[-1, -2]), [-1])

    def loss_terms(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s, K = self.settings, self.model.d.ft_denoising_steps
        B = tf.shape(b["obs"])[0]
        newlogprobs = self._mean_logprob(self.model.logprobs(b["obs"], b["chains"]))
        oldlogprobs = self._mean_logprob(b["logprobs"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)
        adv = clip_advantages(adv, s.clip_advantage_lower_quantile, s.clip_advantage_upper_quantile)
        adv = tf.repeat(adv, K) * tf.tile(self.discount, [B])  # (B*K,), row b*K + j
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, oldlogprobs, adv,
                                                           tf.tile(self.clip_coefs, [B]))
        v_loss = value_loss(tf.reshape(self.model.critic(b["obs"]), [-1]), b["returns"], b["values"],
                            s.clip_vloss_coef)
        terms = {"pg_loss": pg_loss, "entropy_loss": tf.zeros(()), "v_loss": v_loss, "approx_kl": approx_kl,
                 "clipfrac": clipfrac}
        if self.model.d.use_bc_loss:
            _, base_chains = self.model.sample(b["obs"], tf.transpose(b["bc_noise"], [1, 0, 2, 3]), False,
                                               use_base_policy=True)
            bc = tf.reduce_mean(tf.clip_by_value(self.model.logprobs(b["obs"], base_chains), LOGPROB_MIN,
                                                 LOGPROB_MAX), axis=[-1, -2])
            terms.update(bc_loss=-tf.reduce_mean(bc), bc_coef=tf.constant(self.model.d.bc_loss_coeff))
        return terms
