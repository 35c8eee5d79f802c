"""What one fine-tuning iteration's rollout does, as a trainer asks it of the loop (dppo/training/finetune.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RolloutPlan:
    """Up to `steps` policy steps of every env, stopping early once `stop_after_episodes` episodes have ended
    (None: never), acting with `policy` (None: the trainer's agent)."""

    steps: int
    stop_after_episodes: int | None = None
    policy: Any = None
