"""Cal-QL: SAC whose double-Q critic carries the calibrated conservative regulariser (TF side; twin of
core_torch/algorithms/calql_gaussian.py). Canonical names: network.*, critic.*, target_critic.*, log_alpha."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core_tf.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, floats
from core_tf.algorithms.sac_gaussian import SACGaussianAgent, actor_loss


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, tf.Tensor], alpha: tf.Tensor) -> tf.Tensor:
    """TD error to the best of cql_n_actions next samples plus the calibrated regulariser (see the torch twin)."""
    m, s = agent.model, agent.settings
    obs, actions = b["obs"], b["actions"]
    B, n = tf.shape(actions)[0], s.cql_n_actions
    q_data = m.critic(obs, actions)
    next_obs = tf.repeat(b["next_obs"], n, axis=0)  # (B*n, To, Do)
    next_a, next_logprob = agent.sample(next_obs, b["next_noise"])
    next_q = tf.reshape(tf.minimum(*m.target_critic(next_obs, next_a)), [B, n])
    best = tf.argmax(next_q, axis=1)
    target = b["rewards"] + s.gamma * (1 - b["terminated"]) * tf.gather(next_q, best, batch_dims=1)
    target = tf.stop_gradient(target - alpha * tf.gather(tf.reshape(next_logprob, [B, n]), best, batch_dims=1))
    pi_a, log_pi = agent.sample(obs, b["pi_noise"])
    pi_a, log_pi = tf.stop_gradient(pi_a), tf.stop_gradient(log_pi)
    td = tf.add_n([tf.reduce_mean(tf.square(q - target)) for q in q_data])
    random_actions = b["random_actions"]  # (B, N, Ta, Da)
    n_rand, Ta, Da = random_actions.shape[1], random_actions.shape[2], random_actions.shape[3]
    log_rand_pi = 0.5 ** (Ta * Da)
    q_rand = m.critic(tf.repeat(obs, n_rand, axis=0), tf.reshape(random_actions, [B * n_rand, Ta * Da]))
    q_pi = m.critic(obs, pi_a)
    penalty = 0.0
    for qd, qr, qp in zip(q_data, q_rand, q_pi, strict=True):
        calibrated = tf.maximum(qp - log_pi, b["returns"])[:, None]  # (B, 1)
        ood = tf.reduce_logsumexp(tf.concat([tf.reshape(qr - log_rand_pi, [B, n_rand]), calibrated], -1), -1)
        penalty = penalty + tf.reduce_mean(tf.clip_by_value(ood - qd, s.cql_clip_diff_min, s.cql_clip_diff_max))
    return td + s.cql_min_q_weight * penalty


class CalQLGaussianAgent(SACGaussianAgent):
    """SAC's models, optimizers and compiled step (its _update_step is this one)."""

    def _update_step(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s, m = self.settings, self.model
        alpha = tf.stop_gradient(tf.exp(tf.identity(m.log_alpha)))
        with tf.GradientTape() as tape:
            loss_c = critic_loss(self, b, alpha)
        self.critic_opt.apply(tape.gradient(loss_c, self.critic_opt.variables))
        self.polyak("target_critic.", "critic.")
        with tf.GradientTape() as tape:
            loss_a = actor_loss(m.network, m.critic, b["obs"], b["actor_noise"], alpha, s.randn_clip_value,
                                s.tanh_output)
        self.actor_opt.apply(tape.gradient(loss_a, self.actor_opt.variables))
        out = {"critic_loss": loss_c, "actor_loss": loss_a, "alpha": alpha}
        if s.automatic_entropy_tuning:
            out["temperature_loss"] = self.step_temperature(b["obs"], b["temperature_noise"])
        return out

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One upstream Cal-QL update (see the torch twin)."""
        return floats(self._update(as_tensors(batch)))
