"""One framework's half of pre-training: model, EMA copy, AdamW, LR schedule, train step.

Twin of core_torch/pretrain.py. The train step is one compiled tf.function; the
learning rate comes from the Keras schedule at the optimizer's step count.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.canonical import export_state, load_state
from core_tf.diffusion import DiffusionModel
from core_tf.lr_schedule import CosineAnnealingWarmupRestarts
from core_tf.optim import AdamW, clip_grad_norm
from core_tf.precision import float_dtype
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
        self.max_grad_norm = max_grad_norm
        c = config
        chunk = tf.TensorSpec([None, c.horizon_steps, c.action_dim], float_dtype())
        state = tf.TensorSpec([None, c.cond_steps, c.obs_dim], float_dtype())
        self._step = tf.function(self._train_step, jit_compile=True,
                                 input_signature=[chunk, state, tf.TensorSpec([None], tf.int64), chunk])

    @property
    def lr(self) -> float:
        return float(self.lr_schedule(self.optimizer.step))

    def _train_step(self, actions: tf.Tensor, states: tf.Tensor, t: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.model.loss(actions, states, t, noise)
        grads = tape.gradient(loss, self.variables)
        grads, _ = clip_grad_norm(grads, self.max_grad_norm)
        self.optimizer.apply(grads, self.variables, self.lr_schedule(self.optimizer.step))
        return loss

    def train_step(self, actions: np.ndarray, states: np.ndarray, t: np.ndarray, noise: np.ndarray) -> float:
        """One AdamW step on a batch: actions (B, Ta, Da), states (B, To, Do), t (B,), noise like actions."""
        return float(self._step(actions, states, t, noise))

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
        rng = tf.random.get_global_generator().state.numpy().copy()
        return {"model": export_state(self.model), "ema": export_state(self.ema),
                "optimizer": self.optimizer.state(), "rng": OrderedDict(tf=rng)}

    def load_groups(self, groups: dict[str, OrderedDict], epochs_done: int) -> None:
        load_state(self.model, groups["model"], "model")
        load_state(self.ema, groups["ema"], "ema")
        self.optimizer.load_state(groups["optimizer"])
        if "rng" in groups and "tf" in groups["rng"]:
            tf.random.get_global_generator().state.assign(np.asarray(groups["rng"]["tf"]))
        del epochs_done  # the lr follows from the restored optimizer step
