"""One network's optimizer as upstream's off-policy agents build it: AdamW over its parameters with a
cosine warm-restart learning rate stepped once per iteration, and its state in canonical names."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from core_torch.runtime.lr_schedule import CosineAnnealingWarmupRestarts
from core_torch.runtime.optim import adamw_state, clip_grad_norm, load_adamw_state, make_adamw
from shared.lr_schedule import CosineWarmupRestarts


class ScheduledAdamW:
    """AdamW on `named` parameters, lr = schedule(iterations so far)."""

    def __init__(self, named: Sequence[tuple[str, nn.Parameter]], lr: float, weight_decay: float,
                 schedule: CosineWarmupRestarts) -> None:
        self.named = list(named)
        self.params = [p for _, p in self.named]
        self.opt = make_adamw(self.params, lr, weight_decay)
        self.sched = CosineAnnealingWarmupRestarts(self.opt, schedule)

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def step(self, loss: torch.Tensor, max_grad_norm: float | None = None) -> None:
        """Gradients of `loss` for these parameters only (others' .grad untouched), clipped at max_grad_norm
        when given, then one AdamW step."""
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        for p, g in zip(self.params, grads):
            p.grad = torch.zeros_like(p) if g is None else g
        if max_grad_norm is not None:
            clip_grad_norm(self.params, max_grad_norm)
        self.opt.step()
        for p in self.params:
            p.grad = None

    def end_iteration(self) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            self.sched.step()

    def state(self) -> OrderedDict:
        return adamw_state(self.opt, self.named)

    def load_state(self, state: dict | None, iterations: int) -> None:
        """The optimizer state (None: keep fresh AdamW moments) and the schedule after `iterations` steps."""
        if state is not None:
            load_adamw_state(self.opt, self.named, state)
        self.sched.last_epoch = iterations
        for group in self.opt.param_groups:
            group["lr"] = self.sched.schedule(iterations)
