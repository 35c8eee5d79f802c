"""One framework's half of pre-training: model, EMA copy, AdamW, LR schedule, train step; for a
diffusion policy (PretrainBackend), a Gaussian one (GaussianPretrainBackend, upstream GaussianModel.loss) or a GMM
(GMMPretrainBackend, upstream GMMModel.loss).

Twin of core_torch/algorithms/pretrain.py. The train step is one compiled tf.function; the
learning rate comes from the Keras schedule at the optimizer's step count.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.algorithms.gmm import GMMModel
from core_tf.algorithms.ppo_loss import normal_entropy, normal_logprob
from core_tf.diffusion.model import DiffusionModel
from core_tf.networks.inputs import cond_inputs, obs_signature, step_inputs
from core_tf.networks.registry import build_network
from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_tf.runtime.module import Module
from core_tf.runtime.optim import AdamW, clip_grad_norm
from core_tf.runtime.precision import float_dtype
from core_tf.runtime.rng import seed_dropout
from shared.data import observations as ob
from shared.lr_schedule import CosineWarmupRestarts
from shared.settings import DiffusionConfig, GaussianModelConfig, GMMModelConfig


class PretrainBackend:
    name = "tf"

    def __init__(self, config: DiffusionConfig, init_params: OrderedDict, learning_rate: float, weight_decay: float,
                 schedule: CosineWarmupRestarts, steps_per_epoch: int, max_grad_norm: float | None = None,
                 num_epochs: int = 100000) -> None:
        self.model = self._build_model(config)
        self.ema = self._build_model(config)
        load_state(self.model, init_params)
        load_state(self.ema, init_params)
        self.named = list(self.model.named_parameters())
        self.variables = [v for _, v in self.named]
        self.optimizer = AdamW(self.named, weight_decay)
        self.lr_schedule = CosineAnnealingWarmupRestarts(schedule, num_epochs, steps_per_epoch)
        self.steps_per_epoch = steps_per_epoch
        # schedule position = optimizer steps + offset; the offset is non-zero after a resume with a
        # fresh optimizer (its step count restarts for the bias correction, as torch's)
        self.schedule_offset = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.max_grad_norm = max_grad_norm
        self._step = tf.function(self._train_step, jit_compile=True, input_signature=self._step_signature(config))

    def _build_model(self, config: DiffusionConfig) -> Module:
        return DiffusionModel(config)

    def _step_signature(self, config: DiffusionConfig) -> list[tf.TensorSpec]:
        c = config
        chunk = tf.TensorSpec([None, c.horizon_steps, c.action_dim], float_dtype())
        state = obs_signature(c.network, c.cond_steps, c.obs_dim)  # (state, rgb) for an image network
        return [chunk, state, tf.TensorSpec([None], tf.int64), chunk]

    @property
    def lr(self) -> float:
        return float(self.lr_schedule(self.optimizer.step + self.schedule_offset))

    def step_metrics(self) -> dict[str, float]:
        """Numbers of the last train step besides its loss (none for diffusion)."""
        return {}

    def _train_step(self, actions: tf.Tensor, states: tf.Tensor, t: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.model.loss(actions, states, t, noise, training=True)
        grads = tape.gradient(loss, self.variables)
        grads, _ = clip_grad_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, self.variables, self.lr_schedule(self.optimizer.step + self.schedule_offset))
        return loss

    def train_step(self, actions: np.ndarray, states: ob.Obs, t: np.ndarray, noise: np.ndarray) -> float:
        """One AdamW step on a batch: actions (B, Ta, Da), states (B, To, Do) (or a camera observation's dict),
        t (B,), noise like actions."""
        return float(self._step(actions, step_inputs(states), t, noise))

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per epoch)."""
        seed_dropout(seed)

    def end_epoch(self) -> None:
        """The Keras schedule advances with the optimizer's step count; nothing to do."""

    def ema_reset(self) -> None:
        for (_, e), (_, p) in zip(self.ema.named_parameters(), self.named):
            e.assign(p)

    def ema_update(self, decay: float) -> None:
        """ema = decay * ema + (1 - decay) * model."""
        for (_, e), (_, p) in zip(self.ema.named_parameters(), self.named):
            e.assign(e * decay + p * (1.0 - decay))

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "ema": export_state(self.ema),
                "optimizer": self.optimizer.state()}

    def load_groups(self, groups: dict[str, OrderedDict], epochs_done: int) -> None:
        """Model, EMA and (when the checkpoint has it) optimizer state; without it the optimizer starts
        fresh and the learning rate continues from epoch `epochs_done` of the schedule."""
        load_state(self.model, groups["model"], "model")
        load_state(self.ema, groups["ema"], "ema")
        if "optimizer" in groups:
            self.optimizer.load_state(groups["optimizer"])
        self.schedule_offset.assign(epochs_done * self.steps_per_epoch - int(self.optimizer.step.numpy()))


class GaussianModel(Module):
    """Upstream GaussianModel's training half: the network under `network.` and its loss."""

    def __init__(self, config: GaussianModelConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.network = self.add_child("network", build_network(config.network))

    def loss(self, actions: tf.Tensor, states: tf.Tensor, ent_coef: float,
             training: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
        """(loss, mean entropy) of actions (B, Ta, Da) given states (B, To, Do): minus the Normal log-density of the
        flattened chunk averaged over batch and dimensions (B, Ta * Da), minus ent_coef times the mean entropy.
        training: apply dropout (torch's module mode; its pre-training sets train())."""
        mean, std = self.network(*cond_inputs(states), training=training)
        logprob = normal_logprob(tf.reshape(actions, tf.shape(mean)), mean, std)  # (B, Ta * Da)
        entropy = tf.reduce_mean(normal_entropy(std))
        return -tf.reduce_mean(logprob) - ent_coef * entropy, entropy


class GaussianPretrainBackend(PretrainBackend):
    """Pre-training of a Gaussian policy: same optimizer, schedule and EMA as PretrainBackend; a batch needs
    no timesteps or noise."""

    def __init__(self, config: GaussianModelConfig, init_params: OrderedDict, learning_rate: float,
                 weight_decay: float, schedule: CosineWarmupRestarts, steps_per_epoch: int,
                 max_grad_norm: float | None = None, num_epochs: int = 100000, ent_coef: float = 0.0) -> None:
        self.ent_coef = ent_coef
        self._entropy = float("nan")
        super().__init__(config, init_params, learning_rate, weight_decay, schedule, steps_per_epoch, max_grad_norm,
                         num_epochs)

    def _build_model(self, config: GaussianModelConfig) -> Module:
        return GaussianModel(config)

    def _step_signature(self, config: GaussianModelConfig) -> list[tf.TensorSpec]:
        net = config.network
        return [tf.TensorSpec([None, net.horizon_steps, net.action_dim], float_dtype()),
                obs_signature(net, None, None)]  # states (B, To, Do): To * Do = cond_dim (and frames)

    def step_metrics(self) -> dict[str, float]:
        return {"entropy": self._entropy}

    def _loss(self, actions: tf.Tensor, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(loss, entropy) of a batch."""
        return self.model.loss(actions, states, self.ent_coef)

    def _train_step(self, actions: tf.Tensor, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:  # type: ignore[override]
        with tf.GradientTape() as tape:
            loss, entropy = self._loss(actions, states)
        grads = tape.gradient(loss, self.variables)
        grads, _ = clip_grad_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, self.variables, self.lr_schedule(self.optimizer.step + self.schedule_offset))
        return loss, entropy

    def train_step(self, actions: np.ndarray, states: ob.Obs) -> float:  # type: ignore[override]
        """One AdamW step on a batch: actions (B, Ta, Da), states (B, To, Do) (or a camera observation's dict)."""
        loss, entropy = self._step(actions, step_inputs(states))
        self._entropy = float(entropy)
        return float(loss)


class GMMPretrainBackend(GaussianPretrainBackend):
    """Pre-training of a GMM policy (upstream GMMModel under TrainGaussianAgent): the same steps on the mixture's
    negative log-likelihood, which takes no entropy bonus (ent_coef stays 0)."""

    def _build_model(self, config: GMMModelConfig) -> Module:
        return GMMModel(build_network(config.network))

    def _loss(self, actions: tf.Tensor, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.model.loss(actions, states)
