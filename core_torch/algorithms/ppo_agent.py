"""What every PPO policy shares on the torch side: two AdamW optimizers with their
schedules, the combined loss step, and checkpoint groups. Policies subclass it and
provide `loss_terms`."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from core_torch.networks.inputs import obs_tensors
from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_torch.runtime.optim import adamw_state, clip_grad_norm, load_adamw_state, make_adamw
from core_torch.runtime.rng import seed_dropout
from shared.settings import PPOSettings


class PPOAgent(ABC):
    def __init__(self, model: nn.Module, actor_prefix: str, settings: PPOSettings) -> None:
        """model holds the trainable actor (its parameters start with actor_prefix) and `critic`."""
        self.model, self.settings = model, settings
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.actor_named = [(n, p) for n, p in named if n.startswith(actor_prefix)]
        self.critic_named = [(n, p) for n, p in named if n.startswith("critic.")]
        s = settings
        self.actor_opt = make_adamw([p for _, p in self.actor_named], s.actor_lr, s.actor_weight_decay)
        self.critic_opt = make_adamw([p for _, p in self.critic_named], s.critic_lr, s.critic_weight_decay)
        self.actor_sched = CosineAnnealingWarmupRestarts(self.actor_opt, s.actor_schedule)
        self.critic_sched = CosineAnnealingWarmupRestarts(self.critic_opt, s.critic_schedule)
        # a learned DDIM eta (model.learn_eta): its own AdamW and schedule (upstream's eta_optimizer)
        self.eta_named = [(n, p) for n, p in named if n.startswith("eta.")]
        self.eta_opt = self.eta_sched = None
        if self.eta_named:
            if s.eta_schedule is None:
                raise ValueError("a learned eta needs PPOSettings.eta_schedule (train.eta_lr_scheduler)")
            self.eta_opt = make_adamw([p for _, p in self.eta_named], s.eta_lr, s.eta_weight_decay)
            self.eta_sched = CosineAnnealingWarmupRestarts(self.eta_opt, s.eta_schedule)
        self.batches_per_epoch = s.batches_per_epoch
        self._minibatch = 0  # update() calls since the last end_iteration
        self._pending = False  # gradients summed by update(apply=False) calls, not yet stepped

    @property
    def actor_lr(self) -> float:
        return float(self.actor_opt.param_groups[0]["lr"])

    @property
    def critic_lr(self) -> float:
        return float(self.critic_opt.param_groups[0]["lr"])

    @abstractmethod
    def loss_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """pg_loss, v_loss (differentiable), approx_kl, clipfrac; optionally entropy_loss, bc_loss and bc_coef."""

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
        s = self.settings
        step_eta = self.step_eta(update_actor, minibatch)
        terms = self.loss_terms({k: obs_tensors(v) for k, v in batch.items()})
        loss = terms["pg_loss"] + s.vf_coef * terms["v_loss"]
        if "entropy_loss" in terms:
            loss = loss + s.ent_coef * terms["entropy_loss"]
        if "bc_loss" in terms:
            loss = loss + terms["bc_coef"] * terms["bc_loss"]
        if not self._pending:
            self.actor_opt.zero_grad(set_to_none=True)
            self.critic_opt.zero_grad(set_to_none=True)
            if self.eta_opt is not None:
                self.eta_opt.zero_grad(set_to_none=True)
        loss.backward()
        self._pending = not apply
        if not apply:
            return {k: float(v.detach()) for k, v in terms.items() if k != "bc_coef"}
        if update_actor:
            clip_grad_norm([p for _, p in self.actor_named], s.max_grad_norm)
            self.actor_opt.step()
        if step_eta:
            self.eta_opt.step()
        self.critic_opt.step()
        return {k: float(v.detach()) for k, v in terms.items() if k != "bc_coef"}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration)."""
        seed_dropout(seed)

    def end_iteration(self, update_actor: bool) -> None:
        with warnings.catch_warnings():
            # evaluation iterations step the schedule without an optimizer step, as upstream does
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            if update_actor:
                self.actor_sched.step()
                if self.eta_sched is not None:
                    self.eta_sched.step()
            self.critic_sched.step()
        self._minibatch = 0
        self._pending = False  # a sum no step took is dropped (upstream's configs leave none)

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model),
                "actor_optimizer": adamw_state(self.actor_opt, self.actor_named),
                "critic_optimizer": adamw_state(self.critic_opt, self.critic_named),
                **({"eta_optimizer": adamw_state(self.eta_opt, self.eta_named)} if self.eta_opt is not None else {})}

    def load_groups(self, groups: dict[str, OrderedDict], actor_steps: int, critic_steps: int) -> None:
        """Model, the optimizer states the checkpoint has (those missing start fresh) and the schedules'
        positions."""
        load_state(self.model, groups["model"], "model")
        if "actor_optimizer" in groups:
            load_adamw_state(self.actor_opt, self.actor_named, groups["actor_optimizer"])
        if "critic_optimizer" in groups:
            load_adamw_state(self.critic_opt, self.critic_named, groups["critic_optimizer"])
        scheds = [(self.actor_sched, actor_steps), (self.critic_sched, critic_steps)]
        if self.eta_opt is not None:
            if "eta_optimizer" in groups:
                load_adamw_state(self.eta_opt, self.eta_named, groups["eta_optimizer"])
            scheds.append((self.eta_sched, actor_steps))  # stepped with the actor's, as upstream
        for sched, steps in scheds:
            sched.last_epoch = steps
            for group in sched.optimizer.param_groups:
                group["lr"] = sched.schedule(steps)
