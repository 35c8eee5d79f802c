"""IDQL: implicit diffusion Q-learning (TF side; twin of core_torch/algorithms/idql_diffusion.py). The minibatch
update and the candidates' scoring are compiled tf.functions.

Canonical names: network.* (the policy, as a pre-trained DiffusionModel), critic_q.*, critic_q_target.*,
critic_v.*. Shapes: B rows, S candidates, Ta horizon, Da action dim, To history, Do obs dim.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.scheduled_agent import ScheduledAgent
from core_tf.algorithms.target_network import polyak_update
from core_tf.diffusion.model import DiffusionModel
from core_tf.networks.critic import CriticObs, CriticObsAct
from core_tf.runtime.canonical import load_state
from core_tf.runtime.precision import float_dtype
from core_tf.runtime.scheduled_optimizer import ScheduledAdamW
from shared.algorithms.idql import chain_noise, choice_uniforms, choose_candidates
from shared.param_spec import CriticObsActConfig, CriticObsConfig
from shared.settings import DiffusionConfig
from shared.settings.idql import IDQLSettings


def expectile_loss(diff: tf.Tensor, expectile: float) -> tf.Tensor:
    """Asymmetric square (B,): expectile * diff^2 where diff > 0, else (1 - expectile) * diff^2."""
    weight = tf.where(diff > 0, tf.constant(expectile, diff.dtype), tf.constant(1.0 - expectile, diff.dtype))
    return weight * tf.square(diff)


def value_loss(critic_v: CriticObs, target_q: CriticObsAct, obs: tf.Tensor, actions: tf.Tensor,
               expectile: float) -> tf.Tensor:
    """mean expectile_loss(min(target Q1, Q2)(s, a) - V(s)); the target Q is held fixed."""
    q = tf.stop_gradient(tf.minimum(*target_q(obs, actions)))  # (B,)
    v = tf.reshape(critic_v(obs), [-1])  # (B,)
    return tf.reduce_mean(expectile_loss(q - v, expectile))


def q_loss(critic_q: CriticObsAct, critic_v: CriticObs, obs: tf.Tensor, next_obs: tf.Tensor, actions: tf.Tensor,
           rewards: tf.Tensor, terminated: tf.Tensor, gamma: float) -> tf.Tensor:
    """sum over both heads of mean (Q_i(s, a) - (r + gamma * (1 - terminated) * V(s')))^2; V held fixed."""
    q1, q2 = critic_q(obs, actions)  # (B,) each
    next_v = tf.stop_gradient(tf.reshape(critic_v(next_obs), [-1]))  # (B,)
    target = rewards + gamma * next_v * (1.0 - terminated)
    return tf.reduce_mean(tf.square(q1 - target)) + tf.reduce_mean(tf.square(q2 - target))


class IDQLDiffusionAgent(ScheduledAgent):
    """act / minibatch update / checkpoint groups on numpy arrays for IDQL."""

    def __init__(self, dc: DiffusionConfig, critic_q: CriticObsActConfig, critic_v: CriticObsConfig,
                 settings: IDQLSettings, init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = m = DiffusionModel(dc)
        self.critic_q = m.add_child("critic_q", CriticObsAct(critic_q))
        self.critic_q_target = m.add_child("critic_q_target", CriticObsAct(critic_q))
        self.critic_v = m.add_child("critic_v", CriticObs.from_config(critic_v))
        load_state(m, init_params)
        named = list(m.named_parameters())
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)  # schedule steps so far

        def opt(prefix: str, wd: float, schedule) -> ScheduledAdamW:
            return ScheduledAdamW([(n, v) for n, v in named if n.startswith(prefix)], wd, schedule, s.n_train_itr,
                                  self.iterations)

        self.optimizers = {"actor_optimizer": opt("network.", s.actor_weight_decay, s.actor_schedule),
                           "critic_q_optimizer": opt("critic_q.", s.critic_weight_decay, s.critic_schedule),
                           "critic_v_optimizer": opt("critic_v.", s.critic_weight_decay, s.critic_schedule)}
        self.target_vars = [v for n, v in named if n.startswith("critic_q_target.")]
        f = float_dtype()
        state = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], f)
        chunk = tf.TensorSpec([None, dc.horizon_steps, dc.action_dim], f)
        rows = tf.TensorSpec([None], f)
        signature = [{"obs": state, "next_obs": state, "actions": chunk, "rewards": rows, "terminated": rows,
                      "t": tf.TensorSpec([None], tf.int64), "noise": chunk}]
        self._update = {step: tf.function(lambda b, step=step: self._update_step(b, step), jit_compile=True,
                                          input_signature=signature) for step in (True, False)}
        self._score = tf.function(self._score_candidates, jit_compile=True, input_signature=[state, chunk])

    def learning_rates(self) -> dict[str, float]:
        """The actor's rate and the critics' (critic_q and critic_v follow the same schedule)."""
        return {"actor_lr": self.optimizers["actor_optimizer"].lr,
                "critic_lr": self.optimizers["critic_q_optimizer"].lr}

    def _score_candidates(self, state: tf.Tensor, samples: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """min(target Q1, Q2) and V of (S * B) candidate rows."""
        return tf.minimum(*self.critic_q_target(state, samples)), tf.reshape(self.critic_v(state), [-1])

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (K + 2, S * B, Ta, Da) (shared/algorithms/idql.py) -> {'actions': (B, Ta, Da)}.
        Evaluation (deterministic) with eval_deterministic: deterministic chains and the argmax candidate;
        otherwise noisy chains and, with use_expectile_exploration, the expectile-weighted draw."""
        s = self.settings
        B, S = obs.shape[0], s.num_sample
        chain_det = bool(deterministic and s.eval_deterministic)
        greedy = chain_det or not s.use_expectile_exploration
        state = tf.tile(tf.convert_to_tensor(obs, float_dtype()), [S, 1, 1])  # (S * B, To, Do), candidate-major
        samples = self.model.sample(state, chain_noise(noise), deterministic=chain_det,
                                    min_sampling_std=s.min_sampling_denoising_std).trajectories  # (S * B, Ta, Da)
        q, v = self._score(state, samples)
        q = q.numpy().reshape(S, B)
        v = None if greedy else v.numpy().reshape(S, B)
        u = None if greedy else choice_uniforms(noise, B)
        index = choose_candidates(q, v, u, s.critic_hyperparam)  # (B,)
        return {"actions": samples.numpy().reshape(S, B, *samples.shape[1:])[index, np.arange(B)]}

    def _update_step(self, b: dict[str, tf.Tensor], step_actor: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        m, s, opt = self.model, self.settings, self.optimizers
        v_opt, q_opt, a_opt = opt["critic_v_optimizer"], opt["critic_q_optimizer"], opt["actor_optimizer"]
        with tf.GradientTape() as tape:
            loss_v = value_loss(self.critic_v, self.critic_q_target, b["obs"], b["actions"], s.expectile)
        v_opt.apply(tape.gradient(loss_v, v_opt.variables))
        with tf.GradientTape() as tape:
            loss_q = q_loss(self.critic_q, self.critic_v, b["obs"], b["next_obs"], b["actions"], b["rewards"],
                            b["terminated"], s.gamma)
        q_opt.apply(tape.gradient(loss_q, q_opt.variables))
        polyak_update(self.target_vars, q_opt.variables, s.critic_tau)
        with tf.GradientTape() as tape:
            loss_actor = m.loss(b["actions"], b["obs"], b["t"], b["noise"], training=True)
        if step_actor:
            a_opt.apply(tape.gradient(loss_actor, a_opt.variables), s.max_grad_norm)
        return loss_v, loss_q, loss_actor

    def update(self, batch: dict[str, np.ndarray], step_actor: bool) -> dict[str, float]:
        """One minibatch as upstream: V step, Q step (with the updated V), Polyak target update, then the
        actor's denoising loss, stepped (clipped at max_grad_norm) only when `step_actor`."""
        loss_v, loss_q, loss_actor = self._update[step_actor]({k: tf.constant(v) for k, v in batch.items()})
        return {"critic_v_loss": float(loss_v), "critic_q_loss": float(loss_q), "actor_loss": float(loss_actor)}
