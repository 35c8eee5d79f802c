"""DIPO: a diffusion policy fine-tuned by denoising regression on replayed action chunks that a
double-Q critic's action gradient has moved uphill (TF side; twin of core_torch/algorithms/dipo_diffusion.py).
One minibatch (critic step, action gradient, actor step, Polyak updates) is one compiled tf.function.

Canonical names: network.* (the trained actor), actor_target.*, critic.* and critic_target.*.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.action_gradient import improve_actions
from core_tf.algorithms.scheduled_agent import ScheduledAgent
from core_tf.algorithms.target_network import polyak_update
from core_tf.diffusion.model import DiffusionModel
from core_tf.networks.critic import CriticObsAct
from core_tf.networks.registry import build_network
from core_tf.runtime.canonical import load_state
from core_tf.runtime.precision import float_dtype
from shared.param_spec import CriticObsActConfig
from shared.settings import DiffusionConfig
from shared.settings.dipo import DIPOSettings


def td_target(next_q1: tf.Tensor, next_q2: tf.Tensor, rewards: tf.Tensor, terminated: tf.Tensor,
              gamma: float) -> tf.Tensor:
    """r + gamma * min(Q1', Q2') * (1 - terminated), all (B,)."""
    return rewards + gamma * tf.minimum(next_q1, next_q2) * (1 - terminated)


def double_q_loss(q1: tf.Tensor, q2: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """mean (Q1 - y)^2 + mean (Q2 - y)^2, all (B,)."""
    return tf.reduce_mean(tf.square(q1 - target)) + tf.reduce_mean(tf.square(q2 - target))


class DIPODiffusionAgent(ScheduledAgent):
    """act / one DIPO minibatch update / checkpoint groups on numpy arrays."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsActConfig, settings: DIPOSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)  # network = the trained actor
        actor_target = self.model.add_child("actor_target", build_network(dc.network))
        self.critic = self.model.add_child("critic", CriticObsAct(critic))
        self.critic_target = self.model.add_child("critic_target", CriticObsAct(critic))
        load_state(self.model, init_params)
        self.target_policy = DiffusionModel(dc, network=actor_target)  # upstream's forward
        self.next_action_plan = self.target_policy.plan(False, s.min_sampling_denoising_std)
        named = list(self.model.named_parameters())
        self.vars = {prefix: [v for n, v in named if n.startswith(prefix + ".")]
                     for prefix in ("network", "actor_target", "critic", "critic_target")}
        self.init_actor_critic_optimizers(s)
        f = float_dtype()
        state = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], f)
        chunk = tf.TensorSpec([None, dc.horizon_steps, dc.action_dim], f)
        rows = tf.TensorSpec([None], f)
        critic_sig = {"obs": state, "next_obs": state, "actions": chunk, "rewards": rows, "terminated": rows,
                      "next_noise": tf.TensorSpec([self.next_action_plan.num_steps + 1, None, dc.horizon_steps,
                                                   dc.action_dim], f)}
        actor_sig = {"obs": state, "actions": chunk, "t": tf.TensorSpec([None], tf.int64), "noise": chunk}
        self._warmup_step = tf.function(lambda cb: self._minibatch(cb, None), jit_compile=True,
                                        input_signature=[critic_sig])
        self._full_step = tf.function(self._minibatch, jit_compile=True, input_signature=[critic_sig, actor_sig])

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}, sampled by the target actor."""
        out = self.target_policy.sample(obs, noise, deterministic=deterministic,
                                        min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def critic_loss(self, b: dict[str, tf.Tensor]) -> tf.Tensor:
        """See the torch twin: next actions from the target actor's chain on b['next_noise'], no gradient."""
        q1, q2 = self.critic(b["obs"], b["actions"])
        next_actions = tf.stop_gradient(self.target_policy._chain(b["next_obs"], b["next_noise"],
                                                                  self.next_action_plan)[0])
        target = tf.stop_gradient(td_target(*self.critic_target(b["next_obs"], next_actions), b["rewards"],
                                            b["terminated"], self.settings.gamma))
        return double_q_loss(q1, q2, target)

    def improve_actions(self, obs: tf.Tensor, actions: tf.Tensor) -> tf.Tensor:
        s = self.settings
        return improve_actions(self.critic, obs, actions, s.action_lr, s.action_gradient_steps, s.action_grad_norm)

    def actor_loss(self, b: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """The plain denoising loss of the (improved) chunks b['actions'] at b['t'] with b['noise']."""
        return self.model.loss(b["actions"], b["obs"], b["t"], b["noise"], training=training)

    def _minibatch(self, cb: dict[str, tf.Tensor], ab: dict[str, tf.Tensor] | None
                   ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        s = self.settings
        with tf.GradientTape() as tape:
            critic_loss = self.critic_loss(cb)
        self.critic_opt.apply(tape.gradient(critic_loss, self.vars["critic"]))
        actor_loss, improved = tf.zeros([], critic_loss.dtype), tf.zeros_like(cb["actions"][:0])
        if ab is not None:
            improved = tf.stop_gradient(self.improve_actions(ab["obs"], ab["actions"]))
            with tf.GradientTape() as tape:
                actor_loss = self.actor_loss({**ab, "actions": improved}, training=True)
            self.actor_opt.apply(tape.gradient(actor_loss, self.vars["network"]), s.max_grad_norm)
        polyak_update(self.vars["critic_target"], self.vars["critic"], s.target_ema_rate)
        polyak_update(self.vars["actor_target"], self.vars["network"], s.target_ema_rate)
        return critic_loss, actor_loss, improved

    def update(self, critic_batch: dict[str, np.ndarray], actor_batch: dict[str, np.ndarray] | None
               ) -> tuple[dict[str, float], np.ndarray | None]:
        """One minibatch (see the torch twin): losses and the improved chunks (None in warm-up)."""
        cb = {k: tf.constant(v) for k, v in critic_batch.items()}
        if actor_batch is None:
            critic_loss, _, _ = self._warmup_step(cb)
            return {"critic_loss": float(critic_loss)}, None
        critic_loss, actor_loss, improved = self._full_step(cb, {k: tf.constant(v) for k, v in actor_batch.items()})
        return {"critic_loss": float(critic_loss), "actor_loss": float(actor_loss)}, improved.numpy()
