"""A torch LR scheduler whose every value comes from shared.lr_schedule."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LRScheduler

from shared.lr_schedule import CosineWarmupRestarts


class CosineAnnealingWarmupRestarts(LRScheduler):
    """Sets every param group's lr to schedule(k) after k calls of step()."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: CosineWarmupRestarts, last_epoch: int = -1) -> None:
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        lr = self.schedule(max(self.last_epoch, 0))
        return [lr for _ in self.optimizer.param_groups]
