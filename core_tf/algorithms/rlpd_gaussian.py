"""RLPD: SAC with a layer-normed critic ensemble (TF side; twin of core_torch/algorithms/rlpd_gaussian.py).
Canonical names: network.*, critic_networks.<i>.*, target_networks.<i>.*, log_alpha."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core_tf.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, floats, sample_actions
from core_tf.networks.critic import CriticEnsemble
from core_tf.runtime.module import Module
from shared.param_spec import CriticObsActConfig, GaussianMLPConfig
from shared.settings.rlpd import RLPDSettings


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, tf.Tensor], pair: tf.Tensor, alpha: tf.Tensor,
                s: RLPDSettings) -> tf.Tensor:
    """mean over members and rows of (Q_k(s, a) - y)^2 (see the torch twin)."""
    m = agent.model
    next_a, next_logprob = agent.sample(b["next_obs"], b["next_noise"])
    next_q = m.target_networks.min_of_pair(b["next_obs"], next_a, pair)
    target = b["rewards"] + s.gamma * (1 - b["terminated"]) * next_q  # (B,)
    if s.backup_entropy:
        target = target + s.gamma * (1 - b["terminated"]) * alpha * (-next_logprob)
    target = tf.stop_gradient(target)
    q = m.critic_networks(b["obs"], b["actions"])  # (n, B)
    return tf.reduce_mean(tf.square(q - target[None]))


def actor_loss(network: Module, critics: CriticEnsemble, obs: tf.Tensor, noise: tf.Tensor, alpha: tf.Tensor,
               randn_clip: float, tanh: bool) -> tf.Tensor:
    """-mean(mean_k Q_k(s, a) - alpha log pi(a|s)), a reparameterised with noise (B, Ta*Da)."""
    a, logprob = sample_actions(network, obs, noise, randn_clip, tanh)
    return -tf.reduce_mean(tf.reduce_mean(critics(obs, a), 0) + alpha * (-logprob))


class RLPDGaussianAgent(GaussianOffPolicyAgent):
    critic_prefixes = ("critic_networks.",)

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsActConfig, settings: RLPDSettings,
                 init_params: dict) -> None:
        super().__init__(actor, critic, settings, init_params)
        self._critic = self.compile(self._critic_step)
        self._actor = self.compile(self._actor_step)

    def build_critics(self) -> None:
        n = self.settings.n_critics
        self.model.critic_networks = self.model.add_child("critic_networks", CriticEnsemble(self.critic_config, n))
        self.model.target_networks = self.model.add_child("target_networks", CriticEnsemble(self.critic_config, n))

    def _critic_step(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        alpha = tf.stop_gradient(tf.exp(tf.identity(self.model.log_alpha)))
        with tf.GradientTape() as tape:
            loss = critic_loss(self, b, b["pair"], alpha, self.settings)
        self.critic_opt.apply(tape.gradient(loss, self.critic_opt.variables))
        self.polyak("target_networks.", "critic_networks.")
        return {"critic_loss": loss, "alpha": alpha}

    def _actor_step(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s, m = self.settings, self.model
        alpha = tf.stop_gradient(tf.exp(tf.identity(m.log_alpha)))
        with tf.GradientTape() as tape:
            loss_a = actor_loss(m.network, m.critic_networks, b["obs"], b["actor_noise"], alpha, s.randn_clip_value,
                                s.tanh_output)
        self.actor_opt.apply(tape.gradient(loss_a, self.actor_opt.variables))
        return {"actor_loss": loss_a, "temperature_loss": self.step_temperature(b["obs"], b["temperature_noise"])}

    def update_critic(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One critic step and the target members' Polyak update (see the torch twin)."""
        return floats(self._critic(as_tensors(batch)))

    def update_actor(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One actor step and one temperature step (see the torch twin)."""
        return floats(self._actor(as_tensors(batch)))
