"""What every PPO policy shares on the TF side (twin of core_torch/algorithms/ppo_agent.py): two
AdamW optimizers with their schedules, the combined loss step, checkpoint groups.
The minibatch update is a compiled tf.function."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any

import tensorflow as tf

from core_tf.networks.inputs import obs_tensors
from core_tf.runtime.canonical import export_state, load_state
from core_tf.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_tf.runtime.module import Module
from core_tf.runtime.optim import AdamW, clip_grad_norm
from core_tf.runtime.rng import seed_dropout
from shared.settings import PPOSettings


class PPOAgent(ABC):
    compile_update = True  # the minibatch update as an XLA-compiled tf.function; False: eager

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
        # a learned DDIM eta (model.learn_eta): its own AdamW and schedule (upstream's eta_optimizer)
        self.eta_named = [(n, v) for n, v in named if n.startswith("eta.")]
        self.eta_opt = self.eta_sched = None
        self.eta_updates = tf.Variable(0, dtype=tf.int64, trainable=False)
        if self.eta_named:
            if s.eta_schedule is None:
                raise ValueError("a learned eta needs PPOSettings.eta_schedule (train.eta_lr_scheduler)")
            self.eta_opt = AdamW(self.eta_named, s.eta_weight_decay)
            self.eta_sched = CosineAnnealingWarmupRestarts(s.eta_schedule, s.n_train_itr + 1)
        self.batches_per_epoch = s.batches_per_epoch
        self._minibatch = 0  # update() calls since the last end_iteration
        self._compiled: dict[tuple[bool, bool, bool], tf.types.experimental.PolymorphicFunction] = {}
        # train.grad_accumulate > 1: the gradients summed by update(apply=False) calls, not yet stepped
        self._sums = ([tf.Variable(tf.zeros_like(v), trainable=False) for _, v in named]
                      if s.grad_accumulate > 1 else None)

    @property
    def actor_lr(self) -> float:
        return float(self.actor_sched(self.actor_updates))

    @property
    def critic_lr(self) -> float:
        return float(self.critic_sched(self.critic_updates))

    @abstractmethod
    def loss_terms(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """pg_loss, v_loss (differentiable), approx_kl, clipfrac; optionally entropy_loss, bc_loss and bc_coef."""

    def _update(self, batch: dict[str, tf.Tensor], update_actor: bool, step_eta: bool,
                apply: bool = True) -> dict[str, tf.Tensor]:
        s = self.settings
        actor_vars = [v for _, v in self.actor_named]
        critic_vars = [v for _, v in self.critic_named]
        eta_vars = [v for _, v in self.eta_named]
        with tf.GradientTape() as tape:
            terms = self.loss_terms(batch)
            loss = terms["pg_loss"] + s.vf_coef * terms["v_loss"]
            if "entropy_loss" in terms:
                loss = loss + s.ent_coef * terms["entropy_loss"]
            if "bc_loss" in terms:
                loss = loss + terms["bc_coef"] * terms["bc_loss"]
        every = actor_vars + critic_vars + eta_vars
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(tape.gradient(loss, every), every)]
        if self._sums is not None:  # train.grad_accumulate: add the sum so far; keep it, or step on it and clear
            grads = [g + acc for g, acc in zip(grads, self._sums)]
            for acc, g in zip(self._sums, grads):
                acc.assign(g if not apply else tf.zeros_like(g))
            if not apply:
                return {k: v for k, v in terms.items() if k != "bc_coef"}
        n_a, n_c = len(actor_vars), len(critic_vars)
        actor_grads, critic_grads, eta_grads = grads[:n_a], grads[n_a:n_a + n_c], grads[n_a + n_c:]
        if update_actor:
            actor_grads, _ = clip_grad_norm(actor_grads, s.max_grad_norm)
            self.actor_opt.apply(actor_grads, actor_vars, self.actor_sched(self.actor_updates))
        if step_eta:
            self.eta_opt.apply(eta_grads, eta_vars, self.eta_sched(self.eta_updates))
        self.critic_opt.apply(critic_grads, critic_vars, self.critic_sched(self.critic_updates))
        return {k: v for k, v in terms.items() if k != "bc_coef"}

    def step_eta(self, update_actor: bool, minibatch: int | None) -> bool:
        """Upstream steps eta after critic warm-up on minibatches with `batch % eta_update_interval == 0`,
        batch counting from 0 in each epoch; without `minibatch` it is counted here (ppo_update's order)."""
        index = self._minibatch % self.batches_per_epoch if minibatch is None else minibatch
        self._minibatch += 1
        return self.eta_opt is not None and update_actor and index % self.settings.eta_update_interval == 0

    def update(self, batch: dict[str, Any], update_actor: bool, minibatch: int | None = None,
               apply: bool = True) -> dict[str, float]:
        """One minibatch: loss = pg + ent_coef*entropy + vf_coef*value (+ bc); actor clipped, critic and eta not.
        minibatch: the batch's index within its epoch (for eta_update_interval). apply=False: the gradients are
        added to those of the calls since the last step, and no optimizer steps (train.grad_accumulate)."""
        key = (update_actor, self.step_eta(update_actor, minibatch), apply)
        if key not in self._compiled:
            def step(b: dict[str, tf.Tensor], k: tuple[bool, bool, bool] = key) -> dict[str, tf.Tensor]:
                return self._update(b, *k)

            self._compiled[key] = (tf.function(step, reduce_retracing=True, jit_compile=True) if self.compile_update
                                   else step)
        out = self._compiled[key]({k: obs_tensors(v) for k, v in batch.items()})
        return {k: float(v) for k, v in out.items()}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration)."""
        seed_dropout(seed)

    def end_iteration(self, update_actor: bool) -> None:
        if update_actor:
            self.actor_updates.assign_add(1)
            if self.eta_opt is not None:
                self.eta_updates.assign_add(1)
        self.critic_updates.assign_add(1)
        self._minibatch = 0
        if self._sums is not None:  # a sum no step took is dropped (upstream's configs leave none)
            for acc in self._sums:
                acc.assign(tf.zeros_like(acc))

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), "actor_optimizer": self.actor_opt.state(),
                "critic_optimizer": self.critic_opt.state(),
                **({"eta_optimizer": self.eta_opt.state()} if self.eta_opt is not None else {})}

    def load_groups(self, groups: dict[str, OrderedDict], actor_steps: int, critic_steps: int) -> None:
        """Model, the optimizer states the checkpoint has (those missing start fresh) and the schedules'
        positions."""
        load_state(self.model, groups["model"], "model")
        if "actor_optimizer" in groups:
            self.actor_opt.load_state(groups["actor_optimizer"])
        if "critic_optimizer" in groups:
            self.critic_opt.load_state(groups["critic_optimizer"])
        if self.eta_opt is not None:
            if "eta_optimizer" in groups:
                self.eta_opt.load_state(groups["eta_optimizer"])
            self.eta_updates.assign(actor_steps)  # stepped with the actor's schedule, as upstream
        self.actor_updates.assign(actor_steps)
        self.critic_updates.assign(critic_steps)
