"""One network's optimizer as upstream's off-policy agents build it: AdamW over its variables with a
cosine warm-restart learning rate stepped once per iteration, and its state in canonical names."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import tensorflow as tf

from core_tf.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_tf.runtime.optim import AdamW, clip_grad_norm
from shared.lr_schedule import CosineWarmupRestarts


class ScheduledAdamW:
    """AdamW on `named` variables, lr = schedule(iterations so far); `iterations` is the agent's counter
    (one tf.Variable for all its optimizers, so a compiled step reads the current rate)."""

    def __init__(self, named: Sequence[tuple[str, tf.Variable]], weight_decay: float, schedule: CosineWarmupRestarts,
                 n_train_itr: int, iterations: tf.Variable) -> None:
        self.named = list(named)
        self.variables = [v for _, v in self.named]
        self.opt = AdamW(self.named, weight_decay)
        self.sched = CosineAnnealingWarmupRestarts(schedule, n_train_itr + 1)
        self.iterations = iterations

    @property
    def lr(self) -> float:
        return float(self.sched(self.iterations))

    def apply(self, grads: Sequence[tf.Tensor], max_grad_norm: float | None = None) -> None:
        """One AdamW step with `grads` (one per variable, None counts as zero), clipped at max_grad_norm
        when given."""
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.variables)]
        if max_grad_norm is not None:
            grads, _ = clip_grad_norm(grads, max_grad_norm)
        self.opt.apply(grads, self.variables, self.sched(self.iterations))

    def state(self) -> OrderedDict:
        return self.opt.state()

    def load_state(self, state: dict | None) -> None:
        """The optimizer state (None: keep fresh AdamW moments); the schedule follows the agent's counter."""
        if state is not None:
            self.opt.load_state(state)
