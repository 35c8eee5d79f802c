"""A GMM policy + critic trained with PPO (upstream model/rl/gmm_ppo.py PPO_GMM, run by its Gaussian PPO agent),
TF side (twin of core_torch/algorithms/ppo_gmm.py). The actor is any network giving (means, stds, logits)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.gmm import mixture_entropy, mixture_logprob, mixture_std, sample_mixture
from core_tf.algorithms.ppo_agent import PPOAgent
from core_tf.algorithms.ppo_loss import clipped_policy_loss, normalize_advantages, value_loss
from core_tf.networks.critic import CriticObs
from core_tf.networks.registry import build_network
from core_tf.runtime.canonical import load_state
from core_tf.runtime.module import Module
from shared.algorithms.gmm import split_step_noise
from shared.param_spec import CriticObsConfig
from shared.param_spec.families import GMMNetworkConfig
from shared.settings import PPOSettings


class PPOGMMModel(Module):
    def __init__(self, actor: GMMNetworkConfig, critic: CriticObsConfig, **kw) -> None:
        super().__init__(**kw)
        self.actor = self.add_child("actor", build_network(actor))
        self.critic = self.add_child("critic", CriticObs.from_config(critic))


class PPOGMMAgent(PPOAgent):
    """act / evaluate / update on numpy arrays. Chunks: (N, Ta, Da); a step's noise (N, Ta*Da + 1)
    (shared/algorithms/gmm.py)."""

    def __init__(self, actor: GMMNetworkConfig, critic: CriticObsConfig, settings: PPOSettings,
                 init_params: OrderedDict) -> None:
        model = PPOGMMModel(actor, critic)
        load_state(model, init_params)
        super().__init__(model, "actor.", settings, {n for n, _ in model.named_parameters()})
        self.chunk = (actor.horizon_steps, actor.action_dim)
        self._act = tf.function(self._act_graph, reduce_retracing=True)

    def _act_graph(self, obs: tf.Tensor, eps: tf.Tensor, u: tf.Tensor, deterministic: bool) -> tf.Tensor:
        means, stds, logits = self.model.actor(obs)
        return sample_mixture(means, stds, logits, eps, u, deterministic)

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        eps, u = split_step_noise(noise)
        actions = self._act(tf.constant(obs), tf.constant(eps), tf.constant(u), deterministic)
        return {"actions": actions.numpy().reshape(len(obs), *self.chunk)}

    def logprob_entropy_std(self, obs: tf.Tensor, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(mixture log-probs (N,) of the flattened chunks, approximate entropy, mean std) (upstream get_logprobs)."""
        means, stds, logits = self.model.actor(obs)
        logprobs = mixture_logprob(tf.reshape(actions, [tf.shape(obs)[0], -1]), means, stds, logits)
        return logprobs, mixture_entropy(stds, logits), mixture_std(stds, logits)

    def evaluate(self, obs: np.ndarray, sample: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), log-probs (N,)) of the rollout's samples under the current policy."""
        o = tf.constant(obs)
        logprobs, _, _ = self.logprob_entropy_std(o, tf.constant(sample["actions"]))
        return tf.reshape(self.model.critic(o), [-1]).numpy(), logprobs.numpy()

    def value(self, obs: np.ndarray) -> np.ndarray:
        return tf.reshape(self.model.critic(tf.constant(obs)), [-1]).numpy()

    def loss_terms(self, b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        s = self.settings
        newlogprobs, entropy, std = self.logprob_entropy_std(b["obs"], b["actions"])
        adv = b["advantages"]
        if s.norm_adv:
            adv = normalize_advantages(adv)  # upstream's PPO_GMM clips no quantiles
        pg_loss, approx_kl, clipfrac = clipped_policy_loss(newlogprobs, b["logprobs"], adv, s.clip_ploss_coef)
        v_loss = value_loss(tf.reshape(self.model.critic(b["obs"]), [-1]), b["returns"], b["values"],
                            s.clip_vloss_coef)
        return {"pg_loss": pg_loss, "entropy_loss": -entropy, "v_loss": v_loss, "approx_kl": approx_kl,
                "clipfrac": clipfrac, "std": tf.stop_gradient(std)}
