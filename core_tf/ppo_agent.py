"""What every PPO policy shares on the TF side (twin of core_torch/ppo_agent.py): two
AdamW optimizers with their schedules, the combined loss step, checkpoint groups.
The minibatch update is a compiled tf.function."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
import tensorflow as tf

from core_tf.canonical import export_state, load_state
from core_tf.lr_schedule import CosineAnnealingWarmupRestarts
from core_tf.module import Module
from core_tf.optim import AdamW, clip_grad_norm
from shared.settings import PPOSettings


class PPOAgent(ABC):
    def __init__(self, model: Module, actor_prefix: str, settings: PPOSettings, trainable: set[str]) -> None:
        """model holds the trainable actor (names starting with actor_prefix) and `critic`; trainable lists
        the canonical names that get gradients (Keras variables have no requires_grad)."""
        self.model, self.settings = model, settings
        named = [(n, v) for n, v in model.named_parameters() if n in trainable]
        self.actor_named = [(n, v) for n, v in named if n.startswith(actor_prefix)]
        self.critic_named = [(n, v) for n, v in named if n.startswith("critic.")]
        s = settings
        self.actor_opt = AdamW(self.actor_named, s.actor_weight_decay)
        self.critic_opt = AdamW(self.critic_named, s.critic_weight_decay)
        # the schedules advance once per iteration; counters kept as variables for the compiled step
        self.actor_updates = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.critic_updates = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.actor_sched = CosineAnnealingWarmupRestarts(s.actor_schedule, s.n_train_itr + 1)
        self.critic_sched = CosineAnnealingWarmupRestarts(s.critic_schedule, s.n_train_itr + 1)
        self._compiled: dict[bool, tf.types.experimental.PolymorphicFunction] = {}

    @property
    def actor_lr(self) -> float:
        return float(self.actor_sched(self.actor_updates))

    @property
    def critic_lr(self) -> float:
        return float(self.critic_sched(self.critic_updates))

    @abstractmethod
    def loss_terms(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """pg_loss, entropy_loss, v_loss (differentiable), approx_kl, clipfrac; optionally bc_loss and bc_coef."""

    def _update(self, batch: dict[str, tf.Tensor], update_actor: bool) -> dict[str, tf.Tensor]:
        s = self.settings
        actor_vars = [v for _, v in self.actor_named]
        critic_vars = [v for _, v in self.critic_named]
        with tf.GradientTape() as tape:
            terms = self.loss_terms(batch)
            loss = terms["pg_loss"] + s.ent_coef * terms["entropy_loss"] + s.vf_coef * terms["v_loss"]
            if "bc_loss" in terms:
                loss = loss + terms["bc_coef"] * terms["bc_loss"]
        grads = tape.gradient(loss, actor_vars + critic_vars)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, actor_vars + critic_vars)]
        actor_grads, critic_grads = grads[: len(actor_vars)], grads[len(actor_vars):]
        if update_actor:
            actor_grads, _ = clip_grad_norm(actor_grads, s.max_grad_norm)
            self.actor_opt.apply(actor_grads, actor_vars, self.actor_sched(self.actor_updates))
        self.critic_opt.apply(critic_grads, critic_vars, self.critic_sched(self.critic_updates))
        return {k: v for k, v in terms.items() if k != "bc_coef"}

    def update(self, batch: dict[str, np.ndarray], update_actor: bool) -> dict[str, float]:
        """One minibatch: loss = pg + ent_coef*entropy + vf_coef*value (+ bc); actor clipped, critic not."""
        if update_actor not in self._compiled:
            self._compiled[update_actor] = tf.function(lambda b, u=update_actor: self._update(b, u),
                                                       reduce_retracing=True, jit_compile=True)
        out = self._compiled[update_actor]({k: tf.constant(v) for k, v in batch.items()})
        return {k: float(v) for k, v in out.items()}

    def end_iteration(self, update_actor: bool) -> None:
        if update_actor:
            self.actor_updates.assign_add(1)
        self.critic_updates.assign_add(1)

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "actor_optimizer": self.actor_opt.state(),
                "critic_optimizer": self.critic_opt.state(),
                "rng": OrderedDict(tf=tf.random.get_global_generator().state.numpy().copy())}

    def load_groups(self, groups: dict[str, OrderedDict], actor_steps: int, critic_steps: int) -> None:
        load_state(self.model, groups["model"], "model")
        self.actor_opt.load_state(groups["actor_optimizer"])
        self.critic_opt.load_state(groups["critic_optimizer"])
        if "rng" in groups and "tf" in groups["rng"]:
            tf.random.get_global_generator().state.assign(np.asarray(groups["rng"]["tf"]))
        self.actor_updates.assign(actor_steps)
        self.critic_updates.assign(critic_steps)
