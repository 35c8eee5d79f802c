"""QSM: a diffusion policy fine-tuned by Q-score matching on replayed action chunks, with a double-Q
critic and its Polyak-averaged target (TF side; twin of core_torch/algorithms/qsm_diffusion.py). One minibatch
update (critic step, actor step, target step) is one compiled tf.function.

Shapes: B rows, Ta horizon (= executed chunk), Da action dim, To history, Do obs dim, S denoising steps.
Canonical names: network.* (the policy), critic.* and critic_target.* (Q1, Q2 each).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.scheduled_agent import ScheduledAgent
from core_tf.algorithms.target_network import polyak_update
from core_tf.diffusion.model import DiffusionModel
from core_tf.networks.critic import CriticObsAct
from core_tf.runtime.canonical import load_state
from core_tf.runtime.precision import float_dtype
from shared.param_spec import CriticObsActConfig
from shared.settings import DiffusionConfig
from shared.settings.qsm import QSMSettings


def qsm_critic_loss(critic: CriticObsAct, target: CriticObsAct, obs: tf.Tensor, actions: tf.Tensor,
                    next_obs: tf.Tensor, next_actions: tf.Tensor, rewards: tf.Tensor, terminated: tf.Tensor,
                    gamma: float) -> tf.Tensor:
    """sum over heads of mean_b (Q_i(s, a) - y)^2, y = r + gamma * (1 - terminated) * min_i Q'_i(s', a');
    twin of the torch function."""
    next_q = tf.stop_gradient(tf.reduce_min(tf.stack(target(next_obs, next_actions)), axis=0))  # (B,)
    y = rewards + gamma * next_q * (1.0 - terminated)
    return tf.add_n([tf.reduce_mean(tf.square(q - y)) for q in critic(obs, actions)])


def qsm_actor_loss(model: DiffusionModel, critic: CriticObsAct, obs: tf.Tensor, x0: tf.Tensor, t: tf.Tensor,
                   noise: tf.Tensor, q_grad_coeff: float, training: bool = False) -> tf.Tensor:
    """mean (-eps_theta(x_t, t, s) - q_grad_coeff * g)^2, g = mean over heads of dQ_i/da at a = x_t; twin of
    the torch function. g comes from its own (inner) tape and is a constant for any outer one.
    training: apply dropout (torch's module mode)."""
    x_t = model.q_sample(x0, t, noise)  # (B, Ta, Da)
    with tf.GradientTape(persistent=True) as inner:
        inner.watch(x_t)
        qs = critic(obs, x_t)
    g = tf.stop_gradient(tf.reduce_mean(tf.stack([inner.gradient(q, x_t) for q in qs]), axis=0))  # (B, Ta, Da)
    del inner
    eps = model.network(x_t, t, obs, training=training)
    return tf.reduce_mean(tf.square(-eps - q_grad_coeff * g))


class QSMDiffusionAgent(ScheduledAgent):
    """act / minibatch update / checkpoint groups on numpy arrays for QSM: AdamW for the policy and for
    the critic, each with its cosine schedule stepped once per iteration (as upstream)."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsActConfig, settings: QSMSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.critic = self.model.add_child("critic", CriticObsAct(critic))
        self.critic_target = self.model.add_child("critic_target", CriticObsAct(critic))
        load_state(self.model, init_params)
        named = list(self.model.named_parameters())
        self.target_vars = [v for n, v in named if n.startswith("critic_target.")]
        self.init_actor_critic_optimizers(s)
        self.plan = self.model.plan(deterministic=False, min_sampling_std=s.min_sampling_denoising_std)
        state = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], float_dtype())
        chunk = tf.TensorSpec([None, dc.horizon_steps, dc.action_dim], float_dtype())
        rows = tf.TensorSpec([None], float_dtype())
        signature = [{"obs": state, "next_obs": state, "actions": chunk, "rewards": rows, "terminated": rows,
                      "chain_noise": tf.TensorSpec([self.plan.num_steps + 1, None, dc.horizon_steps, dc.action_dim],
                                                   float_dtype()),
                      "t": tf.TensorSpec([None], tf.int64), "noise": chunk}]
        self._update_step = {step: tf.function(lambda b, step=step: self._update(b, step), jit_compile=True,
                                               input_signature=signature) for step in (True, False)}

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}: RWR's sampling (std floored at
        min_sampling_denoising_std; deterministic: 1e-3, none at the last step), which QSMDiffusion inherits."""
        out = self.model.sample(obs, noise, deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def critic_loss(self, b: dict[str, tf.Tensor]) -> tf.Tensor:
        """The TD loss of a minibatch, next chunks sampled by the current policy with b['chain_noise']."""
        next_actions, _ = self.model._chain(b["next_obs"], b["chain_noise"], self.plan)
        return qsm_critic_loss(self.critic, self.critic_target, b["obs"], b["actions"], b["next_obs"],
                               tf.stop_gradient(next_actions), b["rewards"], b["terminated"], self.settings.gamma)

    def actor_loss(self, b: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return qsm_actor_loss(self.model, self.critic, b["obs"], b["actions"], b["t"], b["noise"],
                              self.settings.q_grad_coeff, training)

    def _update(self, b: dict[str, tf.Tensor], step_actor: bool) -> tuple[tf.Tensor, tf.Tensor]:
        s = self.settings
        with tf.GradientTape() as tape:
            critic_loss = self.critic_loss(b)
        self.critic_opt.apply(tape.gradient(critic_loss, self.critic_opt.variables))
        with tf.GradientTape() as tape:
            actor_loss = self.actor_loss(b, training=True)
        if step_actor:
            self.actor_opt.apply(tape.gradient(actor_loss, self.actor_opt.variables), s.max_grad_norm)
        polyak_update(self.target_vars, self.critic_opt.variables, s.critic_tau)
        return critic_loss, actor_loss

    def update(self, batch: dict[str, np.ndarray], step_actor: bool) -> dict[str, float]:
        """One minibatch as upstream: critic step, actor loss at the updated critic (an actor step, clipped at
        max_grad_norm, only when `step_actor`), target Polyak step; see the torch twin for the batch keys."""
        critic_loss, actor_loss = self._update_step[step_actor]({k: tf.constant(v) for k, v in batch.items()})
        return {"critic_loss": float(critic_loss), "actor_loss": float(actor_loss)}
