"""What every agent with one scheduled AdamW per network shares (AWR and the replay baselines): learning
rates, dropout reseeding, the schedules' per-iteration step, and checkpoint groups."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from core_torch.runtime.canonical import export_state, load_state
from core_torch.runtime.rng import seed_dropout
from core_torch.runtime.scheduled_optimizer import ScheduledAdamW


class ScheduledAgent:
    """Subclasses set `model` (canonical parameter names) and `optimizers`, keyed by checkpoint group
    ('actor_optimizer', 'critic_optimizer', ...)."""

    model: nn.Module
    optimizers: dict[str, ScheduledAdamW]

    def init_actor_critic_optimizers(self, s: Any) -> None:
        """Upstream's two optimizers: `actor_opt` over network.* and `critic_opt` over critic.*, each with the
        settings' rate, weight decay and schedule (s: AWRSettings or a ReplaySettings)."""
        named = list(self.model.named_parameters())
        self.actor_opt = ScheduledAdamW([(n, p) for n, p in named if n.startswith("network.")], s.actor_lr,
                                        s.actor_weight_decay, s.actor_schedule)
        self.critic_opt = ScheduledAdamW([(n, p) for n, p in named if n.startswith("critic.")], s.critic_lr,
                                         s.critic_weight_decay, s.critic_schedule)
        self.optimizers = {"actor_optimizer": self.actor_opt, "critic_optimizer": self.critic_opt}

    def learning_rates(self) -> dict[str, float]:
        """{'actor_lr': ..., 'critic_lr': ...}: each optimizer's current rate."""
        return {f"{group.removesuffix('_optimizer')}_lr": opt.lr for group, opt in self.optimizers.items()}

    def seed_rng(self, seed: int) -> None:
        """Reseed dropout (shared/framework_seeds.py: once per iteration)."""
        seed_dropout(seed)

    def end_iteration(self) -> None:
        """Every schedule steps once per iteration, evaluation and warm-up ones included (as upstream)."""
        for opt in self.optimizers.values():
            opt.end_iteration()

    def state_groups(self) -> dict[str, OrderedDict]:
        return {"model": export_state(self.model), **{g: opt.state() for g, opt in self.optimizers.items()}}

    def load_groups(self, groups: dict[str, OrderedDict], iterations: int) -> None:
        """The model, the optimizer states the checkpoint has (else fresh AdamW) and the schedules' position
        after `iterations` steps."""
        load_state(self.model, groups["model"], "model")
        for group, opt in self.optimizers.items():
            opt.load_state(groups.get(group), iterations)
