"""SAC with a tanh-squashed Gaussian actor and a double-Q critic (TF side; twin of
core_torch/algorithms/sac_gaussian.py). Canonical names: network.*, critic.*, target_critic.*, log_alpha."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core_tf.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, floats, sample_actions
from core_tf.networks.critic import CriticObsAct
from core_tf.runtime.module import Module
from shared.param_spec import CriticObsActConfig, GaussianMLPConfig
from shared.settings.sac import SACSettings


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, tf.Tensor], alpha: tf.Tensor, gamma: float) -> tf.Tensor:
    """Both heads' mean squared error to the soft TD target (see the torch twin)."""
    m = agent.model
    next_a, next_logprob = agent.sample(b["next_obs"], b["next_noise"])
    next_q = tf.minimum(*m.target_critic(b["next_obs"], next_a)) - alpha * next_logprob
    target = tf.stop_gradient(b["rewards"] + gamma * next_q * (1 - b["terminated"]))
    q1, q2 = m.critic(b["obs"], b["actions"])
    return tf.reduce_mean(tf.square(q1 - target)) + tf.reduce_mean(tf.square(q2 - target))


def actor_loss(network: Module, critic: CriticObsAct, obs: tf.Tensor, noise: tf.Tensor, alpha: tf.Tensor,
               randn_clip: float, tanh: bool) -> tf.Tensor:
    """mean(-min(Q1, Q2)(s, a) + alpha log pi(a|s)), a reparameterised with noise (B, Ta*Da)."""
    a, logprob = sample_actions(network, obs, noise, randn_clip, tanh)
    return tf.reduce_mean(-tf.minimum(*critic(obs, a)) + alpha * logprob)


class SACGaussianAgent(GaussianOffPolicyAgent):
    critic_prefixes = ("critic.",)

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsActConfig, settings: SACSettings,
                 init_params: dict) -> None:
        super().__init__(actor, critic, settings, init_params)
        self._update = self.compile(self._update_step)

    def build_critics(self) -> None:
        self.model.critic = self.model.add_child("critic", CriticObsAct(self.critic_config))
        self.model.target_critic = self.model.add_child("target_critic", CriticObsAct(self.critic_config))

    def _update_step(self, b: dict[str, tf.Tensor], actor_repeats: int) -> dict[str, tf.Tensor]:
        s, m = self.settings, self.model
        alpha = tf.stop_gradient(tf.exp(tf.identity(m.log_alpha)))
        with tf.GradientTape() as tape:
            loss_c = critic_loss(self, b, alpha, s.gamma)
        self.critic_opt.apply(tape.gradient(loss_c, self.critic_opt.variables))
        self.polyak("target_critic.", "critic.")
        out = {"critic_loss": loss_c, "alpha": alpha}
        for r in range(actor_repeats):
            with tf.GradientTape() as tape:
                loss_a = actor_loss(m.network, m.critic, b["obs"], b["actor_noise"][r], alpha, s.randn_clip_value,
                                    s.tanh_output)
            self.actor_opt.apply(tape.gradient(loss_a, self.actor_opt.variables))
            out.update(actor_loss=loss_a, temperature_loss=self.step_temperature(b["obs"], b["temperature_noise"][r]))
        return out

    def update(self, batch: dict[str, np.ndarray], actor_repeats: int) -> dict[str, float]:
        """One upstream SAC update (see the torch twin)."""
        return floats(self._update(as_tensors(batch), int(actor_repeats)))
