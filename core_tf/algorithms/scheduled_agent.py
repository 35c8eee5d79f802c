"""What every agent with one scheduled AdamW per network shares (AWR and the replay baselines): learning
rates, dropout reseeding, the schedules' per-iteration step, and checkpoint groups."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import tensorflow as tf

from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.module import Module
from core_tf.runtime.rng import seed_dropout
from core_tf.runtime.scheduled_optimizer import ScheduledAdamW


class ScheduledAgent:
    """Subclasses set `model` (canonical parameter names), `iterations` (the tf.Variable every schedule
    reads) and `optimizers`, keyed by checkpoint group ('actor_optimizer', 'critic_optimizer', ...)."""

    model: Module
    iterations: tf.Variable
    optimizers: dict[str, ScheduledAdamW]

    def init_actor_critic_optimizers(self, s: Any) -> None:
        """Upstream's two optimizers: `actor_opt` over network.* and `critic_opt` over critic.*, each with the
        settings' weight decay and schedule (s: AWRSettings or a ReplaySettings), and the `iterations`
        counter both schedules read."""
        named = list(self.model.named_parameters())
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)  # schedule steps so far
        self.actor_opt = ScheduledAdamW([(n, v) for n, v in named if n.startswith("network.")], s.actor_weight_decay,
                                        s.actor_schedule, s.n_train_itr, self.iterations)
        self.critic_opt = ScheduledAdamW([(n, v) for n, v in named if n.startswith("critic.")],
                                         s.critic_weight_decay, s.critic_schedule, s.n_train_itr, self.iterations)
        self.optimizers = {"actor_optimizer": self.actor_opt, "critic_optimizer": self.critic_opt}

    def learning_rates(self) -> dict[str, float]:
        """{'actor_lr': ..., 'critic_lr': ...}: each optimizer's current rate."""
        return {f"{group.removesuffix('_optimizer')}_lr": opt.lr for group, opt in self.optimizers.items()}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration)."""
        seed_dropout(seed)

    def end_iteration(self) -> None:
        """Every schedule steps once per iteration, evaluation and warm-up ones included (as upstream)."""
        self.iterations.assign_add(1)

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), **{g: opt.state() for g, opt in self.optimizers.items()}}

    def load_groups(self, groups: dict[str, OrderedDict], iterations: int) -> None:
        """The model, the optimizer states the checkpoint has (else fresh AdamW) and the schedules' position
        after `iterations` steps."""
        load_state(self.model, groups["model"], "model")
        for group, opt in self.optimizers.items():
            opt.load_state(groups.get(group))
        self.iterations.assign(iterations)
