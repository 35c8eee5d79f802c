"""RWR: a diffusion policy fine-tuned by reward-weighted behaviour cloning on its own action chunks
(TF side; twin of core_torch/algorithms/rwr_diffusion.py). The minibatch update is one compiled tf.function.

Shapes: B rows, Ta horizon, Da action dim, To history, Do obs dim. The driver (dppo/algorithms/rwr.py) draws
every random number (sampling noise, timesteps, training noise, minibatch order) in numpy.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.diffusion.model import DiffusionModel
from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_tf.runtime.optim import AdamW, clip_grad_norm
from core_tf.runtime.precision import float_dtype
from core_tf.runtime.rng import seed_dropout
from shared.settings import DiffusionConfig
from shared.settings.rwr import RWRSettings


def weighted_denoising_loss(model: DiffusionModel, x0: tf.Tensor, state: tf.Tensor, t: tf.Tensor,
                            noise: tf.Tensor, weights: tf.Tensor, training: bool = False) -> tf.Tensor:
    """mean_b( weights_b * mean_{Ta,Da} (prediction - target)^2 ); twin of the torch function.
    training: apply dropout (torch's module mode)."""
    pred = model.network(model.q_sample(x0, t, noise), t, state, training=training)
    target = noise if model.config.predict_epsilon else x0
    per_row = tf.reduce_mean(tf.square(pred - target), axis=[-2, -1])
    return tf.reduce_mean(per_row * weights)


class RWRDiffusionAgent:
    """act / update / checkpoint groups on numpy arrays for RWR: one AdamW over the policy network,
    its cosine schedule stepped once per iteration (evaluation iterations included, as upstream)."""

    def __init__(self, dc: DiffusionConfig, settings: RWRSettings, init_params: OrderedDict) -> None:
        self.settings = settings
        self.model = DiffusionModel(dc)
        load_state(self.model, init_params)
        self.named = list(self.model.named_parameters())
        self.variables = [v for _, v in self.named]
        self.optimizer = AdamW(self.named, settings.weight_decay)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)  # schedule steps so far
        self.lr_schedule = CosineAnnealingWarmupRestarts(settings.schedule, settings.n_train_itr + 1)
        chunk = tf.TensorSpec([None, dc.horizon_steps, dc.action_dim], float_dtype())
        rows = tf.TensorSpec([None], float_dtype())
        state = tf.TensorSpec([None, dc.cond_steps, dc.obs_dim], float_dtype())
        self._step = tf.function(self._update, jit_compile=True, input_signature=[
            {"obs": state, "actions": chunk, "t": tf.TensorSpec([None], tf.int64), "noise": chunk, "weights": rows}])

    @property
    def lr(self) -> float:
        return float(self.lr_schedule(self.iterations))

    def act(self, obs: np.ndarray, noise: np.ndarray, deterministic: bool) -> dict[str, np.ndarray]:
        """obs (B, To, Do), noise (S+1, B, Ta, Da) -> {'actions': (B, Ta, Da)}: upstream RWR sampling, every
        step's std floored at min_sampling_denoising_std (deterministic: 1e-3, none at t = 0). No dropout."""
        out = self.model.sample(obs, noise, deterministic=deterministic,
                                min_sampling_std=self.settings.min_sampling_denoising_std)
        return {"actions": out.trajectories.numpy()}

    def loss(self, batch: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """The weighted denoising loss of a minibatch {'obs', 'actions', 't', 'noise', 'weights'}."""
        return weighted_denoising_loss(self.model, batch["actions"], batch["obs"], batch["t"], batch["noise"],
                                       batch["weights"], training)

    def _update(self, batch: dict[str, tf.Tensor]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.loss(batch, training=True)
        grads = tape.gradient(loss, self.variables)
        grads, _ = clip_grad_norm(grads, self.settings.max_grad_norm)
        self.optimizer.apply(grads, self.variables, self.lr_schedule(self.iterations))
        return loss

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One AdamW step on a minibatch (gradients clipped at max_grad_norm when set)."""
        return {"loss": float(self._step({k: tf.constant(v) for k, v in batch.items()}))}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration)."""
        seed_dropout(seed)

    def end_iteration(self) -> None:
        self.iterations.assign_add(1)

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "optimizer": self.optimizer.state()}

    def load_groups(self, groups: dict[str, OrderedDict], scheduler_steps: int) -> None:
        """Model, optimizer state when the checkpoint has it (else a fresh AdamW), and the schedule's position."""
        load_state(self.model, groups["model"], "model")
        if "optimizer" in groups:
            self.optimizer.load_state(groups["optimizer"])
        self.iterations.assign(scheduler_steps)
