"""One framework's half of pre-training: model, EMA copy, AdamW, LR schedule, train step.

Twin of core_torch/algorithms/pretrain.py. The train step is one compiled tf.function; the
learning rate comes from the Keras schedule at the optimizer's step count.
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
from shared.lr_schedule import CosineWarmupRestarts
from shared.settings import DiffusionConfig


class PretrainBackend:
    name = "tf"

    def __init__(self, config: DiffusionConfig, init_params: OrderedDict, learning_rate: float, weight_decay: float,
                 schedule: CosineWarmupRestarts, steps_per_epoch: int, max_grad_norm: float | None = None,
                 num_epochs: int = 100000) -> None:
        self.model = DiffusionModel(config)
        self.ema = DiffusionModel(config)
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
        c = config
        chunk = tf.TensorSpec([None, c.horizon_steps, c.action_dim], float_dtype())
        state = tf.TensorSpec([None, c.cond_steps, c.obs_dim], float_dtype())
        self._step = tf.function(self._train_step, jit_compile=True,
                                 input_signature=[chunk, state, tf.TensorSpec([None], tf.int64), chunk])

    @property
    def lr(self) -> float:
        return float(self.lr_schedule(self.optimizer.step + self.schedule_offset))

    def _train_step(self, actions: tf.Tensor, states: tf.Tensor, t: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.model.loss(actions, states, t, noise, training=True)
        grads = tape.gradient(loss, self.variables)
        grads, _ = clip_grad_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, self.variables, self.lr_schedule(self.optimizer.step + self.schedule_offset))
        return loss

    def train_step(self, actions: np.ndarray, states: np.ndarray, t: np.ndarray, noise: np.ndarray) -> float:
        """One AdamW step on a batch: actions (B, Ta, Da), states (B, To, Do), t (B,), noise like actions."""
        return float(self._step(actions, states, t, noise))

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
