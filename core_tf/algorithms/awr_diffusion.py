"""AWR: a diffusion policy fine-tuned by advantage-weighted denoising regression on replayed action
chunks, with a state-value critic fitted to TD(lambda) targets (TF side; twin of
core_torch/algorithms/awr_diffusion.py). Both updates are compiled tf.functions.

Canonical names: network.* (the policy, as a pre-trained DiffusionModel) and critic.*.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.rwr_diffusion import weighted_denoising_loss
from core_tf.algorithms.scheduled_agent import ScheduledAgent
from core_tf.diffusion.model import DiffusionModel
from core_tf.networks.critic import CriticObs
from core_tf.runtime.canonical import load_state
from core_tf.runtime.precision import float_dtype
from shared.param_spec import CriticObsConfig
from shared.settings import DiffusionConfig
from shared.settings.awr import AWRSettings


def critic_loss(values: tf.Tensor, targets: tf.Tensor, all_pairs: bool) -> tf.Tensor:
    """values (B, 1), targets (B,); twin of the torch function (all_pairs: upstream's B x B broadcast)."""
    if all_pairs:
        return tf.reduce_mean(tf.square(values - targets))
    return tf.reduce_mean(tf.square(values[:, 0] - targets))


class AWRDiffusionAgent(ScheduledAgent):
    """act / values / critic and actor updates / checkpoint groups on numpy arrays for AWR."""

    def __init__(self, dc: DiffusionConfig, critic: CriticObsConfig, settings: AWRSettings,
                 init_params: OrderedDict) -> None:
        self.settings = s = settings
        self.model = DiffusionModel(dc)
        self.critic = self.model.add_child("critic", CriticObs.from_config(critic))
        load_state(self.model, init_params)
        self.init_actor_critic_optimizers(s)
        chunk = tf.TensorSpec([None, dc.horizon_steps, dc.action_dim], float_dtype())
        rows = tf.TensorSpec([None], float_dtype())
        state = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], float_dtype())
        self._critic_step = tf.function(self._update_critic, jit_compile=True,
                                        input_signature=[{"obs": state, "targets": rows}])
        actor_sig = [{"obs": state, "actions": chunk, "t": tf.TensorSpec([None], tf.int64), "noise": chunk,
                      "weights": rows}]
        self._actor_step = {step: tf.function(lambda b, step=step: self._update_actor(b, step), jit_compile=True,
                                              input_signature=actor_sig) for step in (True, False)}

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}, as RWR samples. No dropout."""
        out = self.model.sample(obs, noise, deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) (B,) of observations (B, To, Do)."""
        return tf.reshape(self.critic(tf.constant(obs)), [-1]).numpy()

    def critic_loss(self, batch: dict[str, tf.Tensor]) -> tf.Tensor:
        return critic_loss(self.critic(batch["obs"]), batch["targets"], self.settings.critic_loss_all_pairs)

    def actor_loss(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return weighted_denoising_loss(self.model, batch["actions"], batch["obs"], batch["t"], batch["noise"],
                                       batch["weights"], training)

    def _update_critic(self, batch: dict[str, tf.Tensor]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.critic_loss(batch)
        self.critic_opt.apply(tape.gradient(loss, self.critic_opt.variables))
        return loss

    def _update_actor(self, batch: dict[str, tf.Tensor], step: bool) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.actor_loss(batch, training=True)
        if step:
            self.actor_opt.apply(tape.gradient(loss, self.actor_opt.variables), self.settings.max_grad_norm)
        return loss

    def update_critic(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One AdamW step of the critic on {'obs', 'targets'} (no gradient clipping, as upstream)."""
        return {"critic_loss": float(self._critic_step({k: tf.constant(v) for k, v in batch.items()}))}

    def update_actor(self, batch: dict[str, np.ndarray], step: bool) -> dict[str, float]:
        """The weighted denoising loss; an AdamW step (gradients clipped at max_grad_norm) only when `step`."""
        return {"actor_loss": float(self._actor_step[step]({k: tf.constant(v) for k, v in batch.items()}))}
