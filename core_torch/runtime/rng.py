"""torch's random stream (dropout masks), reseeded per epoch / iteration: see shared/framework_seeds.py."""

from __future__ import annotations

import torch


def seed_dropout(seed: int) -> None:
    """Reseed the global generator that nn.Dropout draws from."""
    torch.manual_seed(seed)
