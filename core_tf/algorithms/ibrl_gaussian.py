"""IBRL: a frozen pre-trained policy proposes beside the RL actor and Q picks (TF side; twin of
core_torch/algorithms/ibrl_gaussian.py, which says how acting departs from upstream). Canonical names:
network.*, target_actor.*, bc_policy.*, critic_networks.<i>.*, target_networks.<i>.*."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core_tf.algorithms.gaussian_offpolicy import GaussianOffPolicyAgent, as_tensors, floats, sample_actions
from core_tf.networks.critic import CriticEnsemble
from core_tf.networks.registry import build_network
from core_tf.runtime.module import Module
from shared.algorithms.gaussian_replay import split_ibrl_step_noise
from shared.param_spec import CriticObsActConfig, GaussianMLPConfig
from shared.settings.ibrl import IBRLSettings


def critic_loss(agent: GaussianOffPolicyAgent, b: dict[str, tf.Tensor], pair: tf.Tensor, gamma: float) -> tf.Tensor:
    """mean over members and rows of (Q_k(s, a) - y)^2, y from the better proposal (see the torch twin)."""
    m, s = agent.model, agent.settings
    bc, _ = sample_actions(m.bc_policy, b["next_obs"], b["bc_noise"], s.randn_clip_value, False, True)
    rl, _ = sample_actions(m.target_actor, b["next_obs"], b["next_noise"], s.randn_clip_value, False)
    q_bc = m.target_networks.min_of_pair(b["next_obs"], bc, pair)
    q_rl = m.target_networks.min_of_pair(b["next_obs"], rl, pair)
    next_q = tf.where(q_bc > q_rl, q_bc, q_rl)
    target = tf.stop_gradient(b["rewards"] + gamma * (1 - b["terminated"]) * next_q)
    q = m.critic_networks(b["obs"], b["actions"])  # (n, B)
    return tf.reduce_mean(tf.square(q - target[None]))


def actor_loss(network: Module, critics: CriticEnsemble, obs: tf.Tensor, noise: tf.Tensor,
               randn_clip: float) -> tf.Tensor:
    """-mean(min_k Q_k(s, a)), a reparameterised with noise (B, Ta*Da); the actor's dropout acts here."""
    a, _ = sample_actions(network, obs, noise, randn_clip, False, training=True)
    return -tf.reduce_mean(tf.reduce_min(critics(obs, a), 0))


def pick_proposals(q_bc: tf.Tensor, q_rl: tf.Tensor, uniform: tf.Tensor, soft: bool, beta: float) -> tf.Tensor:
    """(B,) True where the pre-trained policy's proposal is executed (see the torch twin)."""
    if not soft:
        return q_bc > q_rl
    w = tf.nn.softmax(tf.stack([tf.exp(q_bc * beta), tf.exp(q_rl * beta)], -1), -1)  # (B, 2)
    return uniform < w[:, 0]


class IBRLGaussianAgent(GaussianOffPolicyAgent):
    critic_prefixes = ("critic_networks.",)
    learns_temperature = False

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsActConfig, settings: IBRLSettings,
                 init_params: dict) -> None:
        super().__init__(actor, critic, settings, init_params)
        self._critic = self.compile(self._critic_step)
        self._actor = self.compile(self._actor_step)
        self._pick = tf.function(self._pick_step, reduce_retracing=True)

    def build_critics(self) -> None:
        n, m = self.settings.n_critics, self.model
        m.target_actor = m.add_child("target_actor", build_network(self.actor_config))
        m.bc_policy = m.add_child("bc_policy", build_network(self.actor_config))
        m.critic_networks = m.add_child("critic_networks", CriticEnsemble(self.critic_config, n))
        m.target_networks = m.add_child("target_networks", CriticEnsemble(self.critic_config, n))

    def _pick_step(self, obs: tf.Tensor, bc_noise: tf.Tensor, rl_noise: tf.Tensor, pair: tf.Tensor,
                   uniform: tf.Tensor, deterministic: bool) -> tuple[tf.Tensor, tf.Tensor]:
        s, m = self.settings, self.model
        bc, _ = sample_actions(m.bc_policy, obs, bc_noise, s.randn_clip_value, False, True)
        rl, _ = sample_actions(m.network, obs, rl_noise, s.randn_clip_value, False, deterministic)
        from_bc = pick_proposals(m.critic_networks.min_of_pair(obs, bc, pair),
                                 m.critic_networks.min_of_pair(obs, rl, pair), uniform,
                                 s.soft_action_sample and not deterministic, s.soft_action_sample_beta)
        return tf.where(from_bc[:, None], bc, rl), from_bc

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (N, To, Do), one IBRL step's noise -> {'actions': (N, Ta, Da), 'from_bc': (N,)}."""
        s = self.settings
        n = len(obs)
        d = split_ibrl_step_noise(noise, n, s.chunk, s.n_critics)
        actions, from_bc = self._pick(tf.constant(obs), tf.constant(d["bc"]), tf.constant(d["rl"]),
                                      tf.constant(d["pair"]), tf.constant(d["uniform"]), bool(deterministic))
        return {"actions": actions.numpy().reshape(n, s.horizon_steps, s.action_dim), "from_bc": from_bc.numpy()}

    def _critic_step(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = critic_loss(self, b, b["pair"], self.settings.gamma)
        self.critic_opt.apply(tape.gradient(loss, self.critic_opt.variables))
        self.polyak("target_networks.", "critic_networks.")
        return {"critic_loss": loss}

    def _actor_step(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s, m = self.settings, self.model
        with tf.GradientTape() as tape:
            loss = actor_loss(m.network, m.critic_networks, b["obs"], b["actor_noise"], s.randn_clip_value)
        self.actor_opt.apply(tape.gradient(loss, self.actor_opt.variables))
        self.polyak("target_actor.", "network.")
        return {"actor_loss": loss}

    def update_critic(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        return floats(self._critic(as_tensors(batch)))

    def update_actor(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        return floats(self._actor(as_tensors(batch)))
