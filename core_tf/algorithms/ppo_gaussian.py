"""Gaussian MLP policy + critic trained with PPO (upstream's ppo_gaussian_mlp), TF side."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.ppo_agent import PPOAgent
from core_tf.algorithms.ppo_loss import (
    clipped_policy_loss,
    normal_entropy,
    normal_logprob,
    normalize_advantages,
    value_loss,
)
from core_tf.networks.inputs import Cond, cond_inputs, obs_tensors
from core_tf.networks.registry import build_network
from core_tf.runtime.canonical import load_state
from core_tf.runtime.module import Module
from shared.algorithms.ppo_math import GAUSSIAN_EVAL_STD
from shared.data import observations as ob
from shared.param_spec import CriticObsConfig, GaussianMLPConfig
from shared.settings import PPOSettings


class PPOGaussianModel(Module):
    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsConfig, randn_clip_value: float, **kw) -> None:
        super().__init__(**kw)
        self.actor = self.add_child("actor", build_network(actor))
        self.critic = self.add_child("critic", build_network(critic))  # CriticObs, or a ViTCritic
        self.randn_clip_value = randn_clip_value


class PPOGaussianAgent(PPOAgent):
    """act / evaluate / update on numpy arrays. Chunks: (N, Ta, Da); noise (N, Ta*Da)."""

    def __init__(self, actor: GaussianMLPConfig, critic: CriticObsConfig, settings: PPOSettings,
                 init_params: OrderedDict, randn_clip_value: float = 3.0) -> None:
        model = PPOGaussianModel(actor, critic, randn_clip_value)
        load_state(model, init_params)
        super().__init__(model, "actor.", settings, {n for n, _ in model.named_parameters()})
        self.chunk = (actor.horizon_steps, actor.action_dim)
        self._act = tf.function(self._act_graph, reduce_retracing=True)

    def _act_graph(self, obs: Cond, noise: tf.Tensor, deterministic: bool) -> tf.Tensor:
        mean, std = self.model.actor(*cond_inputs(obs))
        if deterministic:  # upstream still samples, with a tiny std
            std = tf.fill(tf.shape(mean), tf.constant(GAUSSIAN_EVAL_STD, mean.dtype))
        c = self.model.randn_clip_value
        return mean + std * tf.clip_by_value(noise, -c, c)

    def act(self, obs: ob.Obs, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        actions = self._act(obs_tensors(obs), tf.constant(noise), deterministic)
        return {"actions": actions.numpy().reshape(ob.batch_len(obs), *self.chunk)}

    def _logprob_entropy(self, obs: Cond, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mean, std = self.model.actor(*cond_inputs(obs))
        flat = tf.reshape(actions, tf.shape(mean))
        return tf.reduce_mean(normal_logprob(flat, mean, std), -1), tf.reduce_mean(normal_entropy(std))

    def evaluate(self, obs: ob.Obs, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N,)) of the rollout's samples under the current policy."""
        o = obs_tensors(obs)
        logprobs, _ = self._logprob_entropy(o, tf.constant(sample["actions"]))
        return tf.reshape(self.model.critic(*cond_inputs(o)), [-1]).numpy(), logprobs.numpy()

    def value(self, obs: ob.Obs) -> np.ndarray:
        return tf.reshape(self.model.critic(*cond_inputs(obs_tensors(obs))), [-1]).numpy()

    def loss_terms(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s = self.settings
        newlogprobs, entropy = self._logprob_entropy(b["obs"], b["actions"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)  # upstream's Gaussian PPO clips no quantiles
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv, s.clip_ploss_coef)
        v_loss = value_loss(tf.reshape(self.model.critic(*cond_inputs(b["obs"])), [-1]), b["returns"], b["values"],
                            s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "entropy_loss": -entropy, "v_loss": v_loss, "approx_kl": approx_kl,
                "clipfrac": clipfrac}
