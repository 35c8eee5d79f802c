"""A Keras LearningRateSchedule whose every value comes from shared.lr_schedule.

Keras calls a schedule with the optimizer's iteration count (one per batch),
while upstream DPPO steps its scheduler once per epoch (or per PPO iteration):
`steps_per_update` converts the first into the second.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from core_tf.runtime.precision import constant
from shared.lr_schedule import CosineWarmupRestarts


class CosineAnnealingWarmupRestarts(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, schedule: CosineWarmupRestarts, num_updates: int, steps_per_update: int = 1) -> None:
        """num_updates: how many scheduler steps to tabulate; later steps keep the last value."""
        self.schedule = schedule
        self.num_updates = int(num_updates)
        self.steps_per_update = int(steps_per_update)
        self.table = constant(schedule.table(self.num_updates + 1))

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        update = tf.cast(step, tf.int64) // self.steps_per_update
        return tf.gather(self.table, tf.minimum(update, self.num_updates))

    def get_config(self) -> dict:
        return {"schedule": self.schedule.__dict__, "num_updates": self.num_updates,
                "steps_per_update": self.steps_per_update}

    @classmethod
    def from_config(cls, config: dict) -> CosineAnnealingWarmupRestarts:
        return cls(CosineWarmupRestarts(**config["schedule"]), config["num_updates"], config["steps_per_update"])
