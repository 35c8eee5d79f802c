"""DQL (Diffusion Q-Learning): a double-Q critic fitted to TD targets from a Polyak-averaged target
copy, and a diffusion policy trained through its whole sampling chain (TF side; twin of
core_torch/algorithms/dql_diffusion.py). One minibatch update is one graph-mode tf.function: XLA compiling the two
unrolled chains and the gradient through one of them took over twice as long as tracing them on CPU.

Canonical names: network.* (the policy), critic.* and critic_target.*.
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
from shared.settings.dql import DQLSettings


def differentiable_sample(model: DiffusionModel, state: tf.Tensor, noise: tf.Tensor, min_sampling_std: float,
                          final_action_clip: bool) -> tf.Tensor:
    """The exploration chain with gradients kept (upstream forward_train): state (B, To, Do), noise
    (S+1, B, Ta, Da) -> x_0 (B, Ta, Da), clamped to [-1, 1] when final_action_clip."""
    plan = model.plan(False, min_sampling_std)
    c = model.config
    t_embs = model.network.time_embedding(tf.constant(plan.timesteps))  # (S, time_dim)
    cond = model.network.condition(state)  # (B, C)
    z = tf.clip_by_value(noise[1:], -c.randn_clip_value, c.randn_clip_value)  # (S, B, Ta, Da)
    x = noise[0]
    for i, coefs in enumerate(plan.step_scalars):
        x = model.reverse_mean(x, model.network.denoise(x, t_embs[i : i + 1], cond), coefs) + coefs["std"] * z[i]
    return tf.clip_by_value(x, -1.0, 1.0) if final_action_clip else x


def td_targets(critic_target: CriticObsAct, next_obs: tf.Tensor, next_actions: tf.Tensor, rewards: tf.Tensor,
               terminated: tf.Tensor, gamma: float) -> tf.Tensor:
    """r + gamma * min(Q1', Q2')(s', a') * (1 - terminated), (B,), no gradient."""
    next_q = tf.minimum(*critic_target(next_obs, next_actions))
    return tf.stop_gradient(rewards + gamma * next_q * (1.0 - terminated))


def critic_loss(critic: CriticObsAct, obs: tf.Tensor, actions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Both heads' mean squared TD error, summed: obs (B, To, Do), actions (B, Ta, Da), targets (B,)."""
    q1, q2 = critic(obs, actions)
    return tf.reduce_mean(tf.square(q1 - targets)) + tf.reduce_mean(tf.square(q2 - targets))


def actor_loss(model: DiffusionModel, critic: CriticObsAct, obs: tf.Tensor, chain_noise: tf.Tensor, t: tf.Tensor,
               noise: tf.Tensor, q1_head: tf.Tensor, s: DQLSettings) -> tf.Tensor:
    """Denoising loss of a chunk sampled with gradients plus eta * q_loss (twin of the torch function; q1_head
    (0 or 1) picks -mean(Q1) / mean|Q2|, else -mean(Q2) / mean|Q1|, normalisers detached)."""
    chunk = differentiable_sample(model, obs, chain_noise, s.min_sampling_denoising_std,
                                  s.final_action_clip)[:, : s.act_steps]  # (B, Ta, Da)
    q1, q2 = critic(obs, chunk)
    bc = model.loss(chunk, obs, t, noise)
    q_loss = tf.where(q1_head > 0.5, -tf.reduce_mean(q1) / tf.stop_gradient(tf.reduce_mean(tf.abs(q2))),
                      -tf.reduce_mean(q2) / tf.stop_gradient(tf.reduce_mean(tf.abs(q1))))
    return bc + s.eta * q_loss


class DQLDiffusionAgent(ScheduledAgent):
    """act / one DQL minibatch update / checkpoint groups on numpy arrays."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsActConfig, settings: DQLSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.critic = self.model.add_child("critic", CriticObsAct(critic))
        self.critic_target = self.model.add_child("critic_target", CriticObsAct(critic))
        load_state(self.model, init_params)  # dppo/algorithms/agents.py starts critic_target.* as a copy of critic.*
        named = list(self.model.named_parameters())
        self.init_actor_critic_optimizers(s)
        self.target_vars = [v for n, v in named if n.startswith("critic_target.")]
        f = float_dtype()
        state = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], f)
        chunk = tf.TensorSpec([None, dc.horizon_steps, dc.action_dim], f)
        chain = tf.TensorSpec([dc.denoising_steps + 1, None, dc.horizon_steps, dc.action_dim], f)
        rows = tf.TensorSpec([None], f)
        signature = [{"obs": state, "next_obs": state, "actions": chunk, "rewards": rows, "terminated": rows,
                      "next_noise": chain, "chain_noise": chain, "t": tf.TensorSpec([None], tf.int64),
                      "noise": chunk, "q1_head": tf.TensorSpec([], f)}, tf.TensorSpec([], tf.bool)]
        self._update = tf.function(self._update_step, jit_compile=False, input_signature=signature)

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}: upstream DQL's forward."""
        out = self.model.sample(obs, noise, deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def _update_step(self, b: dict[str, tf.Tensor], step_actor: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        s = self.settings
        explore = self.model.plan(False, s.min_sampling_denoising_std)
        next_actions = tf.stop_gradient(self.model._chain(b["next_obs"], b["next_noise"], explore)[0])
        targets = td_targets(self.critic_target, b["next_obs"], next_actions, b["rewards"], b["terminated"], s.gamma)
        with tf.GradientTape() as tape:
            loss_c = critic_loss(self.critic, b["obs"], b["actions"], targets)
        self.critic_opt.apply(tape.gradient(loss_c, self.critic_opt.variables))
        with tf.GradientTape() as tape:
            loss_a = actor_loss(self.model, self.critic, b["obs"], b["chain_noise"], b["t"], b["noise"], b["q1_head"],
                                s)
        grads = tape.gradient(loss_a, self.actor_opt.variables)

        def step() -> tf.Tensor:
            self.actor_opt.apply(grads, s.max_grad_norm)
            return tf.constant(True)

        tf.cond(step_actor, step, lambda: tf.constant(False))  # one compiled update for warm-up and after
        polyak_update(self.target_vars, self.critic_opt.variables, s.target_ema_rate)
        return loss_c, loss_a, tf.reduce_mean(targets)

    def update(self, batch: dict[str, np.ndarray], step_actor: bool) -> dict[str, float]:
        """One minibatch, as upstream (see the torch twin): critic step, actor loss on the updated critic (a step
        only when `step_actor`), Polyak update of the target critic."""
        loss_c, loss_a, target_q = self._update({k: tf.constant(v) for k, v in batch.items()}, tf.constant(step_actor))
        return {"critic_loss": float(loss_c), "actor_loss": float(loss_a), "target_q": float(target_q)}
